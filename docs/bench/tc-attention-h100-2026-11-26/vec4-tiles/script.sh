#!/bin/bash
# issue 12: tensor-core kernels on the current builtins with vec4 tiles: every kernel test on real subgroup matrices,
# the softmax model's parity, prefill (profile) for the three architectures; count of deprecation warnings
set -u
R=$OUT/r; mkdir -p $R
F='deprecated builtin\|^ *\^\|subgroupMatrix\|^warning:\|Compilation log\|warning(s) generated\|^$'
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem --format=csv; date -u; } > $R/gpu.txt 2>&1
timeout 240 node --test --test-reporter=spec dist/test/kernels/*.test.js > $R/tests-raw.txt 2>&1
echo "deprecation warnings: $(grep -c 'deprecated builtin' $R/tests-raw.txt)" > $R/tests.txt
grep -v "$F" $R/tests-raw.txt >> $R/tests.txt; rm $R/tests-raw.txt
timeout 120 node --test --test-reporter=spec --test-name-pattern="fury-softmax-tiny" dist/test/engine/fixtures.test.js 2>&1 | grep -v "$F" >> $R/tests.txt
B="node dist/cli/fury.js bench --preset small --batch 1 --steps 5 --prefill-chunk 1024"
for cfg in "A=softmax C=8192 X=--profile" "A=2mamba C=8192 X=--profile" "A=2mamba-e C=8192 X=" "A=softmax C=32768 X=--steps=3" "A=softmax C=8192 X=" "A=2mamba C=8192 X="; do
  echo "== $cfg" >> $R/bench.txt
  env $cfg FURY_PROFILE_KERNELS=1 bash -c 'timeout 120 "$@" --arch $A --context $C --prefill-cap $C $X' _ $B 2>&1 | grep -E "prefill|rror|B=1 T" | grep -v "$F" >> $R/bench.txt
done
tar -C $OUT -czf $OUT/r.tgz r && rm -rf $R
