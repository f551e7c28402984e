#!/bin/bash
# issue 12: end-of-session decode check against the anchors in the same lease: fury 2Mamba batch 1 / 32 at 8k, softmax
# and 2Mamba-E batch 32 at 8k (f16 KV) and softmax batch 32 × 4096; then the expert PyTorch 2Mamba and HF Llama anchors
set -u
R=$OUT/r; mkdir -p $R
F='deprecated builtin\|^ *\^\|subgroupMatrix\|^warning:\|Compilation log\|warning(s) generated\|^$'
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem --format=csv; date -u; } > $R/gpu.txt 2>&1
B="node dist/cli/fury.js bench --preset small --steps 30 --prefill-cap 1024"
timeout 150 $B --arch 2mamba --batch 1,32 --context 8192 2>&1 | grep -E "fury bench: 2mamba B|rror" | grep -v "$F" >> $R/bench.txt
timeout 150 $B --arch softmax,2mamba-e --batch 32 --context 8192 2>&1 | grep -E "fury bench: (softmax|2mamba-e) B|rror" | grep -v "$F" >> $R/bench.txt
timeout 150 $B --arch softmax --batch 32 --context 4096 2>&1 | grep -E "fury bench: softmax B|rror" | grep -v "$F" >> $R/bench.txt
mkdir -p $R/anchor && timeout 260 python .gpu/anchor_2mamba.py $R/anchor mamba,hf > $R/anchor/log.txt 2>&1
nvidia-smi --query-gpu=clocks.sm,clocks.mem --format=csv >> $R/gpu.txt 2>&1
tar -C $OUT -czf $OUT/r.tgz r && rm -rf $R
