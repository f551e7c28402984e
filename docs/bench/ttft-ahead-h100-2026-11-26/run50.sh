#!/bin/bash
# issue 12: m2_scale over blocks and conv2 with 4 channels per thread: mamba2/conv2 kernel tests and the 2Mamba tiny
# model's fixtures on real tensor cores; 2Mamba prefill profiles (steps of 4096 and 1024 rows at 8k), throughput at 8k
# and 32k; server TTFT of 32k and 8k prompts
set -u
R=$OUT/r; mkdir -p $R
F='deprecated builtin\|^ *\^\|subgroupMatrix\|^warning:\|Compilation log\|warning(s) generated\|^$'
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem --format=csv; date -u; } > $R/gpu.txt 2>&1
timeout 200 node --test --test-reporter=spec dist/test/kernels/mamba2.test.js dist/test/kernels/conv2.test.js 2>&1 | grep -v "$F" > $R/tests.txt
timeout 150 node --test --test-reporter=spec --test-name-pattern="fury-2mamba-tiny" dist/test/engine/fixtures.test.js 2>&1 | grep -v "$F" >> $R/tests.txt
B="node dist/cli/fury.js bench --preset small --steps 3 --batch 1 --json"
for cfg in "P=4096 C=8192 X=--profile" "P=1024 C=8192 X=--profile" "P=4096 C=8192 X=" "P=4096 C=32768 X="; do
  echo "== $cfg" >> $R/bench.txt
  env $cfg FURY_PROFILE_KERNELS=1 bash -c 'timeout 200 "$@" --arch 2mamba --prefill-chunk $P --context $C --prefill-cap $C $X' _ $B 2>&1 | grep -E "^\{|rror" | grep -v "$F" >> $R/bench.txt
done
node dist/cli/fury.js init --arch 2mamba --preset small --dtype f16 --out /tmp/small-2mamba > /dev/null 2>&1
node dist/cli/fury.js serve --model m=/tmp/small-2mamba --port 8393 > $R/serve.log 2>&1 &
pid=$!
timeout 150 node docs/bench/ttft-h100-2026-11-26/ttft.mjs http://127.0.0.1:8393 32768 6 2> $R/ttft-32k.txt > /dev/null
timeout 100 node docs/bench/ttft-h100-2026-11-26/ttft.mjs http://127.0.0.1:8393 8192 3 2> $R/ttft-8k.txt > /dev/null
kill -INT $pid; wait $pid 2>/dev/null
grep -v "$F" $R/serve.log | grep -i "prefill\|tensor\|listening" | head -5 > $R/serve.txt; rm $R/serve.log
nvidia-smi --query-gpu=clocks.sm,clocks.mem --format=csv >> $R/gpu.txt 2>&1
tar -C $OUT -czf $OUT/r.tgz r && rm -rf $R
