#!/bin/bash
# issue 12: server TTFT of a 32k 2Mamba prompt alone: defaults, checkpoints off, state cache off (3 fresh prompts each)
set -u
R=$OUT/r; mkdir -p $R
F='deprecated builtin\|^ *\^\|subgroupMatrix\|^warning:\|Compilation log\|warning(s) generated\|^$'
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem --format=csv; date -u; } > $R/gpu.txt 2>&1
node dist/cli/fury.js init --arch 2mamba --preset small --dtype f16 --out /tmp/small-2mamba > /dev/null 2>&1
i=0
for flags in "" "--state-checkpoint-tokens 0" "--state-cache-host-bytes 0" ""; do
  i=$((i+1))
  node dist/cli/fury.js serve --model m=/tmp/small-2mamba --port 8393 $flags > $R/serve$i.log 2>&1 &
  pid=$!
  echo "== $i: $flags" >> $R/ttft.txt
  timeout 150 node docs/bench/ttft-h100-2026-11-26/ttft.mjs http://127.0.0.1:8393 32768 3 2>> $R/ttft.txt > /dev/null
  kill -INT $pid; wait $pid 2>/dev/null
  grep -v "$F" $R/serve$i.log | grep -i "checkpoint\|snapshot\|backend" | head -20 > $R/serve$i.txt; rm $R/serve$i.log
done
tar -C $OUT -czf $OUT/r.tgz r && rm -rf $R
