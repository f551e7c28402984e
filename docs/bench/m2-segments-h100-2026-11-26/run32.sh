#!/bin/bash
# issue 12: 2Mamba readout and update as register-tiled FMA products, prefill in segments (scores on tensor cores):
# kernel tests and the 2Mamba tiny model's parity on real tensor cores; 8k prefill profiles for readout splits 2 / 4 / 8,
# segments 512 / 2048, tensor cores off (chunk by chunk); 8k and 32k throughput
set -u
R=$OUT/r; mkdir -p $R
F='deprecated builtin\|^ *\^\|subgroupMatrix\|^warning:\|Compilation log\|warning(s) generated\|^$'
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem --format=csv; date -u; } > $R/gpu.txt 2>&1
timeout 200 node --test --test-reporter=spec dist/test/kernels/mamba2.test.js 2>&1 | grep -v "$F" > $R/tests.txt
timeout 120 node --test --test-reporter=spec --test-name-pattern="fury-2mamba-tiny" dist/test/engine/fixtures.test.js 2>&1 | grep -v "$F" >> $R/tests.txt
B="node dist/cli/fury.js bench --preset small --arch 2mamba --batch 1 --steps 5 --prefill-chunk 1024"
for cfg in "S=1024 P=4 M=on C=8192 X=--profile" "S=1024 P=2 M=on C=8192 X=--profile" "S=1024 P=8 M=on C=8192 X=--profile" "S=512 P=4 M=on C=8192 X=--profile" "S=2048 P=4 M=on C=8192 X=--prefill-chunk=2048" "S=1024 P=4 M=off C=8192 X=--profile" "S=1024 P=4 M=on C=8192 X=" "S=1024 P=4 M=on C=8192 X=" "S=1024 P=4 M=on C=32768 X=--steps=3"; do
  echo "== $cfg" >> $R/bench.txt
  env $cfg FURY_PROFILE_KERNELS=1 bash -c 'FURY_M2_SEGMENT=$S FURY_M2_READ_SPLITS=$P FURY_MATRICES=$M timeout 120 "$@" --context $C --prefill-cap $C $X --json --out $R/b-$S-$P-$M-$C-$RANDOM.json' _ $B 2>&1 | grep -E "fury bench|rror" | grep -v "$F" >> $R/bench.txt
done
nvidia-smi --query-gpu=clocks.sm,clocks.mem --format=csv >> $R/gpu.txt 2>&1
tar -C $OUT -czf $OUT/r.tgz r && rm -rf $R
