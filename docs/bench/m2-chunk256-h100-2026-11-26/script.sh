#!/bin/bash
# issue 12: 2Mamba prefill chunks of 256 rows (FURY_M2_CHUNK=256, a build that allowed it; fits the GPU's 48 KiB of workgroup memory, not lavapipe's 32) vs 128
set -u
R=$OUT/r; mkdir -p $R
F='deprecated builtin\|^ *\^\|subgroupMatrix\|^warning:\|Compilation log\|warning(s) generated\|^$'
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem --format=csv; date -u; } > $R/gpu.txt 2>&1
FURY_M2_CHUNK=256 timeout 200 node --test --test-reporter=spec dist/test/kernels/mamba2.test.js dist/test/kernels/webgpu.test.js 2>&1 | grep -v "$F" > $R/tests.txt
B="node dist/cli/fury.js bench --preset small --arch 2mamba --batch 1 --steps 5 --prefill-chunk 1024 --context 8192 --prefill-cap 8192"
for c in 128 256 128 256; do
  echo "== FURY_M2_CHUNK=$c" >> $R/bench.txt
  FURY_M2_CHUNK=$c FURY_PROFILE_KERNELS=1 timeout 120 $B --profile 2>&1 | grep -E "prefill|rror" | grep -v "$F" >> $R/bench.txt
done
echo "== FURY_M2_CHUNK=256 32k" >> $R/bench.txt
FURY_M2_CHUNK=256 timeout 120 node dist/cli/fury.js bench --preset small --arch 2mamba --batch 1 --steps 3 --prefill-chunk 1024 --context 32768 --prefill-cap 32768 2>&1 | grep -E "prefill|rror" | grep -v "$F" >> $R/bench.txt
tar -C $OUT -czf $OUT/r.tgz r && rm -rf $R
