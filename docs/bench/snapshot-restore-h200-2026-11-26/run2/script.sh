#!/bin/bash
# issue 14: snapshot restore (copies in one submit; host snapshot written without a JS copy) vs a 64-token prefill
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv; date -u; } > $OUT/gpu.txt 2>&1
timeout 60 node --test --test-reporter=spec dist/test/kernels/webgpu.test.js > $OUT/tests.txt 2>&1
timeout 150 node dist/cli/fury.js bench --preset small --arch 2mamba --batch 1 --context 8192 --steps 5 --prefill-cap 1024 --out $OUT/bench.json > $OUT/bench.txt 2>&1
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv >> $OUT/gpu.txt 2>&1
