#!/bin/bash
# issue 12: each prefill step's wall and encode time, passes back to back and with 200 ms pauses (prefill.mjs)
set -u
R=$OUT/r; mkdir -p $R
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem --format=csv; date -u; } > $R/gpu.txt 2>&1
A="node docs/bench/prefill-h100-2026-11-27/prefill.mjs dist"
for c in "softmax 8192 4096 6 0" "softmax 8192 4096 4 200" "2mamba 8192 4096 5 0" "2mamba-e 8192 4096 4 0" "softmax 4096 4096 4 0" "softmax 8192 1024 3 0"; do
  timeout 120 $A $c 2>&1 | grep -E "^\{|rror" >> $R/steps.txt
done
nvidia-smi --query-gpu=clocks.sm,clocks.mem --format=csv >> $R/gpu.txt 2>&1
tar -C $OUT -czf $OUT/r.tgz r && rm -rf $R
