#!/bin/bash
# issue 12: the decode combine writing y as f16 for the o projection (one gemm_in16 less per 2Mamba layer from 8 rows):
# mamba2 / matmul tests on real subgroup matrices and the 2Mamba tiny model's fixtures; 2Mamba decode batch 8 / 32 at
# 8k against the anchors rerun in the same lease
set -u
R=$OUT/r; mkdir -p $R
F='deprecated builtin\|^ *\^\|subgroupMatrix\|^warning:\|Compilation log\|warning(s) generated\|^$'
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem --format=csv; date -u; } > $R/gpu.txt 2>&1
timeout 200 node --test --test-reporter=spec dist/test/kernels/mamba2.test.js dist/test/kernels/matmul.test.js dist/test/kernels/webgpu.test.js 2>&1 | grep -v "$F" > $R/tests.txt
timeout 200 node --test --test-reporter=spec --test-name-pattern="fury-2mamba-tiny" dist/test/engine/fixtures.test.js 2>&1 | grep -v "$F" >> $R/tests.txt
B="node dist/cli/fury.js bench --preset small --steps 30 --prefill-cap 64 --context 8192 --arch 2mamba"
timeout 150 $B --batch 1,8,32 2>&1 | grep -E "fury bench: 2mamba B|rror" | grep -v "$F" >> $R/bench.txt
timeout 150 $B --batch 8,32 2>&1 | grep -E "fury bench: 2mamba B|rror" | grep -v "$F" >> $R/bench.txt
mkdir -p $R/anchor && timeout 260 python .gpu/anchor_2mamba.py $R/anchor mamba > $R/anchor/log.txt 2>&1
nvidia-smi --query-gpu=clocks.sm,clocks.mem --format=csv >> $R/gpu.txt 2>&1
tar -C $OUT -czf $OUT/r.tgz r && rm -rf $R
