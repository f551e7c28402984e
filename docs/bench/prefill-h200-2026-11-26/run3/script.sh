#!/bin/bash
# issue 12: gemm_tc16 (f16 weights straight from memory into subgroup matrices) + 2Mamba chunk 128 / tensor-core readout
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv; date -u; } > $OUT/gpu.txt 2>&1
export FURY_MATRICES=on
timeout 100 node --test --test-reporter=spec dist/test/kernels/matmul.test.js dist/test/kernels/webgpu.test.js > $OUT/tests.txt 2>&1
timeout 100 node --test --test-reporter=spec --test-name-pattern="fury-2mamba-tiny" dist/test/engine/fixtures.test.js >> $OUT/tests.txt 2>&1
export FURY_PROFILE_KERNELS=1
B="node dist/cli/fury.js bench --preset small --batch 1 --context 8192 --steps 5 --profile"
for cfg in "FURY_MATRICES=off FURY_M2_CHUNK=128 A=2mamba" "FURY_MATRICES=on FURY_M2_CHUNK=128 A=2mamba" "FURY_MATRICES=on FURY_M2_CHUNK=64 A=2mamba" "FURY_MATRICES=off A=softmax" "FURY_MATRICES=on A=softmax"; do
  echo "== $cfg" >> $OUT/bench.txt
  env $cfg bash -c 'timeout 110 "$@" --arch $A' _ $B 2>&1 | grep -E "prefill|B=1 T|rror" >> $OUT/bench.txt
done
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv >> $OUT/gpu.txt 2>&1
