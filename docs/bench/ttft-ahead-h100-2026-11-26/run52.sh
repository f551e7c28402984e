#!/bin/bash
# issue 12: server TTFT of 32k / 8k 2Mamba prompts: with a pause of 1 s between requests (the previous prompt's end
# snapshot read back), and with the state cache off (no snapshot read back), back to back
set -u
R=$OUT/r; mkdir -p $R
F='deprecated builtin\|^ *\^\|subgroupMatrix\|^warning:\|Compilation log\|warning(s) generated\|^$'
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem --format=csv; date -u; } > $R/gpu.txt 2>&1
node dist/cli/fury.js init --arch 2mamba --preset small --dtype f16 --out /tmp/small-2mamba > /dev/null 2>&1
for cfg in "N=pause X= P=1000" "N=nocache X=--state-cache-host-bytes=0 P=0"; do
  env $cfg bash -c 'node dist/cli/fury.js serve --model m=/tmp/small-2mamba --port 8393 $X > /tmp/serve.log 2>&1 & pid=$!
  timeout 120 node docs/bench/ttft-h100-2026-11-26/ttft.mjs http://127.0.0.1:8393 32768 6 $P 2> $0/ttft-32k-$N.txt > /dev/null
  timeout 60 node docs/bench/ttft-h100-2026-11-26/ttft.mjs http://127.0.0.1:8393 8192 4 $P 2> $0/ttft-8k-$N.txt > /dev/null
  kill -INT $pid; wait $pid 2>/dev/null' $R
done
nvidia-smi --query-gpu=clocks.sm,clocks.mem --format=csv >> $R/gpu.txt 2>&1
tar -C $OUT -czf $OUT/r.tgz r && rm -rf $R
