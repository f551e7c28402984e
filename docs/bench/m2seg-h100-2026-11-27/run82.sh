#!/bin/bash
# issue 12, the final kernels of this session: kernel tests (attention, mamba2) on real tensor cores, the 2Mamba tiny
# model's fixtures; prefill of the three at 8k and 2Mamba at 32k in steps of 4096; a fixed 10k-token prompt's greedy
# continuation from 2Mamba servers with every segment at once (default), segment after segment
# (FURY_M2_BOUNDARY_BYTES=0) and in steps of 1024; server TTFT of lone 2Mamba and 2Mamba-E prompts
set -u
R=$OUT/r; mkdir -p $R
F='deprecated builtin\|^ *\^\|subgroupMatrix\|^warning:\|Compilation log\|warning(s) generated\|^$'
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem --format=csv; date -u; } > $R/gpu.txt 2>&1
timeout 100 node --test --test-reporter=spec dist/test/kernels/attention.test.js dist/test/kernels/mamba2.test.js 2>&1 | grep -v "$F" > $R/tests.txt
timeout 60 node --test --test-reporter=spec --test-name-pattern="fury-2mamba-tiny" dist/test/engine/fixtures.test.js 2>&1 | grep -v "$F" >> $R/tests.txt
B="node dist/cli/fury.js bench --preset small --batch 1 --steps 3 --prefill-chunk 4096"
timeout 120 $B --arch softmax,2mamba-e,2mamba --context 8192 --out $R/bench-8192.json 2>&1 | grep -E "fury bench: (2mamba|softmax)|rror" | grep -v "$F" | sed 's/snapshot.*//' >> $R/bench.txt
timeout 60 $B --arch 2mamba --context 32768 --prefill-cap 32768 --out $R/bench-32768.json 2>&1 | grep -E "fury bench: (2mamba|softmax)|rror" | grep -v "$F" | sed 's/snapshot.*//' >> $R/bench.txt
serve() { node dist/cli/fury.js serve --model m=/tmp/small-$1 --port 8393 --max-model-len 40000 "${@:2}" > /dev/null 2>&1 & pid=$!; }
node dist/cli/fury.js init --arch 2mamba --preset small --dtype f16 --out /tmp/small-2mamba > /dev/null 2>&1
serve 2mamba
echo "default $(timeout 60 node docs/bench/prefill-h100-2026-11-27/same.mjs http://127.0.0.1:8393 10000 16)" >> $R/same.txt
timeout 80 node docs/bench/ttft-h100-2026-11-26/ttft.mjs http://127.0.0.1:8393 32768 6 1000 2> $R/ttft-32k-2mamba.txt > /dev/null
timeout 40 node docs/bench/ttft-h100-2026-11-26/ttft.mjs http://127.0.0.1:8393 8192 6 1000 2> $R/ttft-8k-2mamba.txt > /dev/null
kill -INT $pid; wait $pid 2>/dev/null
export FURY_M2_BOUNDARY_BYTES=0; serve 2mamba; unset FURY_M2_BOUNDARY_BYTES
echo "segment after segment $(timeout 60 node docs/bench/prefill-h100-2026-11-27/same.mjs http://127.0.0.1:8393 10000 16)" >> $R/same.txt
kill -INT $pid; wait $pid 2>/dev/null
serve 2mamba --prefill-alone 1024
echo "steps of 1024 $(timeout 60 node docs/bench/prefill-h100-2026-11-27/same.mjs http://127.0.0.1:8393 10000 16)" >> $R/same.txt
kill -INT $pid; wait $pid 2>/dev/null
node dist/cli/fury.js init --arch 2mamba-e --preset small --dtype f16 --out /tmp/small-2mamba-e > /dev/null 2>&1
serve 2mamba-e
timeout 60 node docs/bench/ttft-h100-2026-11-26/ttft.mjs http://127.0.0.1:8393 32768 4 1000 2> $R/ttft-32k-2mamba-e.txt > /dev/null
timeout 40 node docs/bench/ttft-h100-2026-11-26/ttft.mjs http://127.0.0.1:8393 8192 5 1000 2> $R/ttft-8k-2mamba-e.txt > /dev/null
kill -INT $pid; wait $pid 2>/dev/null
nvidia-smi --query-gpu=clocks.sm,clocks.mem --format=csv >> $R/gpu.txt 2>&1
tar -C $OUT -czf $OUT/r.tgz r && rm -rf $R
