#!/bin/bash
# issue 14: snapshot restore vs a 64-token prefill on the GPU (small preset); prefix-cache tests on the GPU
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv; date -u; } > $OUT/gpu.txt 2>&1
timeout 120 node --test --test-reporter=spec dist/test/engine/state-cache.test.js > $OUT/tests.txt 2>&1
timeout 150 node dist/cli/fury.js bench --preset small --arch 2mamba --batch 1,32 --context 8192 --steps 5 --prefill-cap 1024 --out $OUT/bench.json > $OUT/bench.txt 2>&1
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv >> $OUT/gpu.txt 2>&1
