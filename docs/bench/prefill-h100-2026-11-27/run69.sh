#!/bin/bash
# issue 12, end of session: kernel tests and the 2Mamba tiny model's fixtures on real tensor cores (readout in one
# range); prefill of all three at 8k and 32k in steps of 4096 (after 2 s of untimed passes); server TTFT of a lone 32k
# 2Mamba prompt (defaults), 1 s between requests
set -u
R=$OUT/r; mkdir -p $R
F='deprecated builtin\|^ *\^\|subgroupMatrix\|^warning:\|Compilation log\|warning(s) generated\|^$'
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem --format=csv; date -u; } > $R/gpu.txt 2>&1
timeout 200 node --test --test-reporter=spec dist/test/kernels/attention.test.js dist/test/kernels/mamba2.test.js 2>&1 | grep -v "$F" > $R/tests.txt
timeout 150 node --test --test-reporter=spec --test-name-pattern="fury-2mamba-tiny" dist/test/engine/fixtures.test.js 2>&1 | grep -v "$F" >> $R/tests.txt
B="node dist/cli/fury.js bench --preset small --batch 1 --steps 3 --arch softmax,2mamba-e,2mamba --prefill-chunk 4096"
for C in 8192 32768; do
  echo "== $C" >> $R/bench.txt
  timeout 250 $B --context $C --prefill-cap 32768 --out $R/bench-$C.json 2>&1 | grep -E "fury bench: (2mamba|softmax)|rror" | grep -v "$F" >> $R/bench.txt
done
node dist/cli/fury.js init --arch 2mamba --preset small --dtype f16 --out /tmp/small-2mamba > /dev/null 2>&1
node dist/cli/fury.js serve --model m=/tmp/small-2mamba --port 8393 --max-model-len 40000 > $R/serve.log 2>&1 &
pid=$!
timeout 80 node docs/bench/ttft-h100-2026-11-26/ttft.mjs http://127.0.0.1:8393 32768 6 1000 2> $R/ttft-32k-2mamba.txt > /dev/null
kill -INT $pid; wait $pid 2>/dev/null
grep -v "$F" $R/serve.log | grep -v '"request finished"\|reqId' | head -12 > $R/serve-2mamba.txt; rm $R/serve.log
nvidia-smi --query-gpu=clocks.sm,clocks.mem --format=csv >> $R/gpu.txt 2>&1
tar -C $OUT -czf $OUT/r.tgz r && rm -rf $R
