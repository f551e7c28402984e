#!/bin/bash
# issue 12: server TTFT of 32k and 8k 2Mamba prompts with a lone prompt's prefill chunks submitted ahead
set -u
R=$OUT/r; mkdir -p $R
F='deprecated builtin\|^ *\^\|subgroupMatrix\|^warning:\|Compilation log\|warning(s) generated\|^$'
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem --format=csv; date -u; } > $R/gpu.txt 2>&1
node dist/cli/fury.js init --arch 2mamba --preset small --dtype f16 --out /tmp/small-2mamba > /dev/null 2>&1
node dist/cli/fury.js serve --model m=/tmp/small-2mamba --port 8393 > $R/serve.log 2>&1 &
pid=$!
timeout 150 node docs/bench/ttft-h100-2026-11-26/ttft.mjs http://127.0.0.1:8393 32768 8 2> $R/ttft-32k.txt > /dev/null
timeout 100 node docs/bench/ttft-h100-2026-11-26/ttft.mjs http://127.0.0.1:8393 8192 4 2> $R/ttft-8k.txt > /dev/null
kill -INT $pid; wait $pid 2>/dev/null
grep -v "$F" $R/serve.log | grep -i "prefill\|tensor\|listening" | head -5 > $R/serve.txt; rm $R/serve.log
nvidia-smi --query-gpu=clocks.sm,clocks.mem --format=csv >> $R/gpu.txt 2>&1
tar -C $OUT -czf $OUT/r.tgz r && rm -rf $R
