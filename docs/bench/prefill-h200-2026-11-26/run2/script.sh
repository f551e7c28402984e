#!/bin/bash
# issue 12: 2Mamba prefill per kernel: FMA chunk 64 / 128, tensor-core readout+update (chunk 64, 96 / 288 rows per readout)
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv; date -u; } > $OUT/gpu.txt 2>&1
FURY_MATRICES=on timeout 100 node --test --test-reporter=spec dist/test/kernels/mamba2.test.js > $OUT/tests.txt 2>&1
FURY_MATRICES=on timeout 100 node --test --test-reporter=spec --test-name-pattern="fury-2mamba-tiny" dist/test/engine/fixtures.test.js >> $OUT/tests.txt 2>&1
export FURY_PROFILE_KERNELS=1
B="node dist/cli/fury.js bench --preset small --arch 2mamba --batch 1 --context 8192 --steps 5 --profile"
for cfg in "FURY_MATRICES=off FURY_M2_CHUNK=64" "FURY_MATRICES=off FURY_M2_CHUNK=128" "FURY_MATRICES=on FURY_GEMM_TC=0 FURY_M2_TC_ROWS=96" "FURY_MATRICES=on FURY_GEMM_TC=0 FURY_M2_TC_ROWS=288"; do
  echo "== $cfg" >> $OUT/bench.txt
  env $cfg timeout 110 $B 2>&1 | grep -E "prefill|B=1 T" >> $OUT/bench.txt
done
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv >> $OUT/gpu.txt 2>&1
