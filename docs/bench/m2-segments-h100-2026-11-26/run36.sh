#!/bin/bash
# issue 12: 2Mamba readout and update on tensor cores (segments): kernel tests and the tiny model's parity on real tensor
# cores; 8k prefill profiles (readout splits 4 / 2 / 8) and throughput at 8k and 32k
set -u
R=$OUT/r; mkdir -p $R
F='deprecated builtin\|^ *\^\|subgroupMatrix\|^warning:\|Compilation log\|warning(s) generated\|^$'
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem --format=csv; date -u; } > $R/gpu.txt 2>&1
timeout 200 node --test --test-reporter=spec dist/test/kernels/mamba2.test.js 2>&1 | grep -v "$F" > $R/tests.txt
timeout 120 node --test --test-reporter=spec --test-name-pattern="fury-2mamba-tiny" dist/test/engine/fixtures.test.js 2>&1 | grep -v "$F" >> $R/tests.txt
B="node dist/cli/fury.js bench --preset small --arch 2mamba --batch 1 --prefill-chunk 1024"
for cfg in "P=4 C=8192 X=--profile" "P=2 C=8192 X=--profile" "P=8 C=8192 X=--profile" "P=4 C=8192 X=--steps=5" "P=4 C=32768 X=--steps=3"; do
  echo "== $cfg" >> $R/bench.txt
  env $cfg FURY_PROFILE_KERNELS=1 bash -c 'FURY_M2_READ_SPLITS=$P timeout 120 "$@" --steps 2 --context $C --prefill-cap $C $X --json --out $R/b-$P-$C-$RANDOM.json' _ $B 2>&1 | grep -E "fury bench: (2mamba B|profile 2mamba prefill)|rror" | grep -v "$F" >> $R/bench.txt
done
tar -C $OUT -czf $OUT/r.tgz r && rm -rf $R
