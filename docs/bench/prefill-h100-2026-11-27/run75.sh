#!/bin/bash
# issue 12, after the grid fix: a fixed 10k-token prompt's greedy continuation from servers of each architecture (small
# preset, random weights) prefilling in steps of 4096 and of 1024 (steps of any size must give the same tokens); server
# TTFT of lone softmax prompts (32k, 8k), 1 s between requests
set -u
R=$OUT/r; mkdir -p $R
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem --format=csv; date -u; } > $R/gpu.txt 2>&1
for a in softmax 2mamba-e 2mamba; do
  node dist/cli/fury.js init --arch $a --preset small --dtype f16 --out /tmp/small-$a > /dev/null 2>&1
  for N in 4096 1024; do
    node dist/cli/fury.js serve --model m=/tmp/small-$a --port 8393 --max-model-len 40000 --prefill-alone $N > /dev/null 2>&1 &
    pid=$!
    echo "A=$a N=$N $(timeout 60 node docs/bench/prefill-h100-2026-11-27/same.mjs http://127.0.0.1:8393 10000 16)" >> $R/same.txt
    if [ $a = softmax ] && [ $N = 4096 ]; then
      timeout 80 node docs/bench/ttft-h100-2026-11-26/ttft.mjs http://127.0.0.1:8393 32768 5 1000 2> $R/ttft-32k-softmax.txt > /dev/null
      timeout 40 node docs/bench/ttft-h100-2026-11-26/ttft.mjs http://127.0.0.1:8393 8192 5 1000 2> $R/ttft-8k-softmax.txt > /dev/null
    fi
    kill -INT $pid; wait $pid 2>/dev/null
  done
done
nvidia-smi --query-gpu=clocks.sm,clocks.mem --format=csv >> $R/gpu.txt 2>&1
tar -C $OUT -czf $OUT/r.tgz r && rm -rf $R
