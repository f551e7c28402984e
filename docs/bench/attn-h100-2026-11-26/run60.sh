#!/bin/bash
# issue 12: server time to first token of a lone 32k-token softmax prompt (small preset, f16) with the new default
# --prefill-alone (4096 on tensor cores) against --prefill-alone 1024 (the old default)
set -u
R=$OUT/r; mkdir -p $R
F='deprecated builtin\|^ *\^\|subgroupMatrix\|^warning:\|Compilation log\|warning(s) generated\|^$'
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem --format=csv; date -u; } > $R/gpu.txt 2>&1
node dist/cli/fury.js init --arch softmax --preset small --dtype f16 --out /tmp/small-softmax > /dev/null 2>&1
for cfg in "N=default X=" "N=1024 X=--prefill-alone=1024"; do
  eval $cfg
  node dist/cli/fury.js serve --model m=/tmp/small-softmax --port 8393 --max-model-len 40000 $X > $R/serve-$N.log 2>&1 &
  pid=$!
  timeout 80 node docs/bench/ttft-h100-2026-11-26/ttft.mjs http://127.0.0.1:8393 32768 3 2> $R/ttft-32k-$N.txt > /dev/null
  kill -INT $pid; wait $pid 2>/dev/null
  grep -v "$F" $R/serve-$N.log | grep -i "prefill\|tensor\|listening\|rror" | head -5 > $R/serve-$N.txt; rm $R/serve-$N.log
done
nvidia-smi --query-gpu=clocks.sm,clocks.mem --format=csv >> $R/gpu.txt 2>&1
tar -C $OUT -czf $OUT/r.tgz r && rm -rf $R
