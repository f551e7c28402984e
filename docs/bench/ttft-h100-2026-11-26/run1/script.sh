#!/bin/bash
# issue 12: 2Mamba readout/update on tensor cores (FURY_M2_TC) vs FMA, robustness off; server TTFT of a 32k 2Mamba
# prompt alone (3 fresh prompts) and of an 8k one
set -u
R=$OUT/r; mkdir -p $R
F='deprecated builtin\|^ *\^\|subgroupMatrix\|^warning:\|Compilation log\|warning(s) generated\|^$'
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem --format=csv; date -u; } > $R/gpu.txt 2>&1
B="node dist/cli/fury.js bench --preset small --arch 2mamba --batch 1 --steps 5 --prefill-chunk 1024 --context 8192 --prefill-cap 8192"
for t in off on off on; do
  echo "== FURY_M2_TC=$t" >> $R/bench.txt
  FURY_M2_TC=$t FURY_PROFILE_KERNELS=1 timeout 120 $B --profile 2>&1 | grep -E "prefill|rror" | grep -v "$F" >> $R/bench.txt
done
node dist/cli/fury.js init --arch 2mamba --preset small --dtype f16 --out /tmp/small-2mamba > /dev/null 2>&1
node dist/cli/fury.js serve --model m=/tmp/small-2mamba --port 8393 > $R/serve.log 2>&1 &
pid=$!
timeout 200 node docs/bench/ttft-h100-2026-11-26/ttft.mjs http://127.0.0.1:8393 32768 3 > $R/ttft-32k.json 2> $R/ttft-32k.err
timeout 100 node docs/bench/ttft-h100-2026-11-26/ttft.mjs http://127.0.0.1:8393 8192 3 > $R/ttft-8k.json 2> $R/ttft-8k.err
kill -INT $pid; wait $pid 2>/dev/null
grep -v "$F" $R/serve.log > $R/serve.txt; rm $R/serve.log
nvidia-smi --query-gpu=clocks.sm,clocks.mem --format=csv >> $R/gpu.txt 2>&1
tar -C $OUT -czf $OUT/r.tgz r && rm -rf $R
