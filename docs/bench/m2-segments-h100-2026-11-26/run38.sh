#!/bin/bash
# issue 12: after 2Mamba's prefill in segments: attention kernel tests and the softmax tiny model's fixtures on real
# tensor cores (attn_mma's cache path was generalised); softmax / 2Mamba-E 8k prefill (regression); 2Mamba segments of
# 512 vs 1024 with the tensor-core readout / update; server TTFT of a 32k 2Mamba prompt with the new default
set -u
R=$OUT/r; mkdir -p $R
F='deprecated builtin\|^ *\^\|subgroupMatrix\|^warning:\|Compilation log\|warning(s) generated\|^$'
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem --format=csv; date -u; } > $R/gpu.txt 2>&1
timeout 200 node --test --test-reporter=spec dist/test/kernels/attention.test.js 2>&1 | grep -v "$F" > $R/tests.txt
timeout 150 node --test --test-reporter=spec --test-name-pattern="fury-softmax-tiny" dist/test/engine/fixtures.test.js 2>&1 | grep -v "$F" >> $R/tests.txt
B="node dist/cli/fury.js bench --preset small --batch 1 --prefill-chunk 1024 --steps 3"
for cfg in "A=softmax S=1024 X=--profile" "A=2mamba-e S=1024 X=--profile" "A=2mamba S=512 X=--profile" "A=2mamba S=1024 X=--profile"; do
  echo "== $cfg" >> $R/bench.txt
  env $cfg FURY_PROFILE_KERNELS=1 bash -c 'FURY_M2_SEGMENT=$S timeout 150 "$@" --arch $A --context 8192 --prefill-cap 8192 $X' _ $B 2>&1 | grep -E "fury bench: (2mamba|softmax|profile .* prefill)|rror" | grep -v "$F" >> $R/bench.txt
done
node dist/cli/fury.js init --arch 2mamba --preset small --dtype f16 --out /tmp/small-2mamba > /dev/null 2>&1
node dist/cli/fury.js serve --model m=/tmp/small-2mamba --port 8393 > $R/serve.log 2>&1 &
pid=$!
timeout 150 node docs/bench/ttft-h100-2026-11-26/ttft.mjs http://127.0.0.1:8393 32768 6 2> $R/ttft-32k-default.txt > /dev/null
timeout 100 node docs/bench/ttft-h100-2026-11-26/ttft.mjs http://127.0.0.1:8393 8192 3 2> $R/ttft-8k-default.txt > /dev/null
kill -INT $pid; wait $pid 2>/dev/null
grep -v "$F" $R/serve.log | grep -i "prefill\|tensor\|listening" | head -5 > $R/serve.txt; rm $R/serve.log
tar -C $OUT -czf $OUT/r.tgz r && rm -rf $R
