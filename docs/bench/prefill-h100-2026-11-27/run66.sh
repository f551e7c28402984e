#!/bin/bash
# issue 12: 2Mamba's segment scores with q unscaled in f16 (s² on the squared score in f32) on real tensor cores (kernel
# tests, the 2Mamba tiny model's fixtures); every timed prefill pass of the bench; server TTFT of a lone 8k / 32k
# softmax prompt with --prefill-alone 1024 (the KV models' default) and 4096, 1 s between requests
set -u
R=$OUT/r; mkdir -p $R
F='deprecated builtin\|^ *\^\|subgroupMatrix\|^warning:\|Compilation log\|warning(s) generated\|^$'
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem --format=csv; date -u; } > $R/gpu.txt 2>&1
timeout 200 node --test --test-reporter=spec dist/test/kernels/attention.test.js dist/test/kernels/mamba2.test.js 2>&1 | grep -v "$F" > $R/tests.txt
timeout 150 node --test --test-reporter=spec --test-name-pattern="fury-2mamba-tiny" dist/test/engine/fixtures.test.js 2>&1 | grep -v "$F" >> $R/tests.txt
B="node dist/cli/fury.js bench --preset small --batch 1 --steps 3"
for cfg in "A=softmax,2mamba-e,2mamba K=4096 C=8192 X="; do
  echo "== $cfg" >> $R/bench.txt
  eval $cfg
  timeout 250 $B --arch $A --prefill-chunk $K --context $C $X --out $R/bench-${A//,/-}-$K-$C.json 2>&1 | grep -E "fury bench: (2mamba|softmax|profile .* prefill)|rror" | grep -v "$F" >> $R/bench.txt
done
timeout 60 node docs/bench/prefill-h100-2026-11-27/prefill.mjs dist softmax 8192 4096 12 0 2>&1 | grep -E "^\{|rror" >> $R/steps.txt
node dist/cli/fury.js init --arch softmax --preset small --dtype f16 --out /tmp/small-softmax > /dev/null 2>&1
for N in 1024 4096; do
  node dist/cli/fury.js serve --model m=/tmp/small-softmax --port 8393 --max-model-len 40000 --prefill-alone $N > $R/serve-$N.log 2>&1 &
  pid=$!
  timeout 80 node docs/bench/ttft-h100-2026-11-26/ttft.mjs http://127.0.0.1:8393 32768 5 1000 2> $R/ttft-32k-$N.txt > /dev/null
  timeout 40 node docs/bench/ttft-h100-2026-11-26/ttft.mjs http://127.0.0.1:8393 8192 5 1000 2> $R/ttft-8k-$N.txt > /dev/null
  kill -INT $pid; wait $pid 2>/dev/null
  grep -v "$F" $R/serve-$N.log | grep -i "tensor\|rror\|fail" | head -5 > $R/serve-$N.txt; rm $R/serve-$N.log
done
nvidia-smi --query-gpu=clocks.sm,clocks.mem --format=csv >> $R/gpu.txt 2>&1
tar -C $OUT -czf $OUT/r.tgz r && rm -rf $R
