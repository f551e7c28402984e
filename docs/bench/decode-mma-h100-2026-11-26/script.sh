#!/bin/bash
# issue 12: batched decode projections on tensor cores: FURY_GEMM_MIN_ROWS 64 (default: GEMV below 64 rows) vs 16 vs 8,
# 2Mamba and softmax at batch 8/16/32, context 4096; the anchors in the same lease
set -u
R=$OUT/r; mkdir -p $R
F='deprecated builtin\|^ *\^\|subgroupMatrix\|^warning:\|Compilation log\|warning(s) generated\|^$'
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem --format=csv; date -u; } > $R/gpu.txt 2>&1
for m in 64 16 8 64 16; do
  FURY_GEMM_MIN_ROWS=$m timeout 150 node dist/cli/fury.js bench --preset small --arch 2mamba,softmax --batch 8,16,32 --context 4096 --steps 30 --json --out $R/min$m-$RANDOM.json 2>&1 | grep -v "$F" | grep "fury bench: .* B=" >> $R/bench-min$m.txt
done
mkdir -p $R/anchor && timeout 240 python .gpu/anchor_2mamba.py $R/anchor mamba,hf > $R/anchor/log.txt 2>&1
nvidia-smi --query-gpu=clocks.sm,clocks.mem --format=csv >> $R/gpu.txt 2>&1
tar -C $OUT -czf $OUT/r.tgz r && rm -rf $R
