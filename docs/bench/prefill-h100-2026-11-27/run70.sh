#!/bin/bash
# issue 12: a lone prompt's last chunk submitted ahead too (the device draws its first token): the 2Mamba-E tiny
# model's fixtures on real tensor cores; prefill of all three at 8k in steps of 4096; server TTFT of lone 2Mamba
# prompts (32k, 8k) and softmax 8k, 1 s between requests
set -u
R=$OUT/r; mkdir -p $R
F='deprecated builtin\|^ *\^\|subgroupMatrix\|^warning:\|Compilation log\|warning(s) generated\|^$'
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem --format=csv; date -u; } > $R/gpu.txt 2>&1
timeout 150 node --test --test-reporter=spec --test-name-pattern="fury-2mamba-e-tiny" dist/test/engine/fixtures.test.js 2>&1 | grep -v "$F" > $R/tests.txt
B="node dist/cli/fury.js bench --preset small --batch 1 --steps 3 --arch softmax,2mamba-e,2mamba --prefill-chunk 4096"
timeout 250 $B --context 8192 --out $R/bench-8192.json 2>&1 | grep -E "fury bench: (2mamba|softmax)|rror" | grep -v "$F" >> $R/bench.txt
for a in 2mamba softmax; do
  node dist/cli/fury.js init --arch $a --preset small --dtype f16 --out /tmp/small-$a > /dev/null 2>&1
  node dist/cli/fury.js serve --model m=/tmp/small-$a --port 8393 --max-model-len 40000 > $R/serve.log 2>&1 &
  pid=$!
  [ $a = 2mamba ] && timeout 80 node docs/bench/ttft-h100-2026-11-26/ttft.mjs http://127.0.0.1:8393 32768 6 1000 2> $R/ttft-32k-$a.txt > /dev/null
  timeout 40 node docs/bench/ttft-h100-2026-11-26/ttft.mjs http://127.0.0.1:8393 8192 6 1000 2> $R/ttft-8k-$a.txt > /dev/null
  kill -INT $pid; wait $pid 2>/dev/null
  grep -v "$F" $R/serve.log | grep -i "rror\|fail" | head -5 > $R/serve-$a.txt; rm $R/serve.log
done
nvidia-smi --query-gpu=clocks.sm,clocks.mem --format=csv >> $R/gpu.txt 2>&1
tar -C $OUT -czf $OUT/r.tgz r && rm -rf $R
