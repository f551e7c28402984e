#!/bin/bash
# issue 12: 2Mamba chunked prefill on tensor cores (m2_read_tc / m2_update_tc): tests with FURY_MATRICES=on, profile off vs on
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv; date -u; } > $OUT/gpu.txt 2>&1
export FURY_MATRICES=on
timeout 150 node --test --test-reporter=spec dist/test/kernels/mamba2.test.js dist/test/kernels/matmul.test.js dist/test/kernels/webgpu.test.js > $OUT/tests.txt 2>&1
timeout 100 node --test --test-reporter=spec --test-name-pattern="fury-2mamba-tiny" dist/test/engine/fixtures.test.js >> $OUT/tests.txt 2>&1
B="node dist/cli/fury.js bench --preset small --arch 2mamba --batch 1 --context 8192 --steps 10 --profile"
FURY_MATRICES=off timeout 100 $B > $OUT/bench.txt 2>&1
FURY_GEMM_TC=0 timeout 100 $B >> $OUT/bench.txt 2>&1
FURY_GEMM_TC=0 FURY_M2_TC_ROWS=288 timeout 100 $B >> $OUT/bench.txt 2>&1
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv >> $OUT/gpu.txt 2>&1
