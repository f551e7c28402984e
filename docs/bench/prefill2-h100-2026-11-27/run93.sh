#!/bin/bash
# issue 12, the session's build so far (early submit, glu epilogue, combine as f16): every kernel's GPU time in a
# 2Mamba prefill step (FURY_PROFILE_KERNELS=1); segments of 256 and 1024 rows against 512; prefill at 8k (three
# architectures) and 2Mamba at 32k; 2Mamba decode at batch 1 and 32 twice beside the expert anchor; server TTFT of a
# lone 32k 2Mamba prompt.
set -u
R=$OUT/r; mkdir -p $R
F='deprecated builtin\|^ *\^\|subgroupMatrix\|^warning:\|Compilation log\|warning(s) generated\|^$'
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem --format=csv; date -u; } > $R/gpu.txt 2>&1
B="bench --preset small --arch 2mamba --batch 1 --context 8192 --steps 30 --prefill-chunk 4096 --profile --json"
run() { echo "== $1" >> $R/bench.txt; shift; timeout 80 "$@" 2>&1 | grep -E "^\{|rror" | grep -v "$F" >> $R/bench.txt; }
run "per kernel" env FURY_PROFILE_KERNELS=1 node dist/cli/fury.js $B
run "new" node dist/cli/fury.js $B
run "segment 1024" env FURY_M2_SEGMENT=1024 node dist/cli/fury.js $B
run "segment 256" env FURY_M2_SEGMENT=256 node dist/cli/fury.js $B
run "new" node dist/cli/fury.js $B
P="node dist/cli/fury.js bench --preset small --batch 1 --steps 3 --prefill-chunk 4096"
p() { timeout 100 "$@" 2>&1 | grep -E "fury bench: (2mamba|softmax)|rror" | grep -v "$F" | sed 's/snapshot.*//' >> $R/prefill.txt; }
p $P --arch 2mamba,softmax,2mamba-e --context 8192 --out $R/prefill-8192.json
p $P --arch 2mamba --context 32768 --prefill-cap 32768 --out $R/prefill-32768.json
D="node dist/cli/fury.js bench --preset small --arch 2mamba --batch 1,32 --context 8192 --steps 300 --prefill-cap 512 --prefill-chunk 512"
timeout 80 $D --out $R/decode-a.json 2>&1 | grep -E "fury bench: 2mamba B|rror" | grep -v "$F" | sed 's/; prefill.*//' >> $R/decode.txt
mkdir -p $R/anchor && timeout 150 python .gpu/anchor_2mamba.py $R/anchor mamba > $R/anchor/log.txt 2>&1
timeout 80 $D --out $R/decode-b.json 2>&1 | grep -E "fury bench: 2mamba B|rror" | grep -v "$F" | sed 's/; prefill.*//' >> $R/decode.txt
node dist/cli/fury.js init --arch 2mamba --preset small --dtype f16 --out /tmp/small-2mamba > /dev/null 2>&1
node dist/cli/fury.js serve --model m=/tmp/small-2mamba --port 8393 --max-model-len 40000 > /dev/null 2>&1 & pid=$!
timeout 60 node docs/bench/ttft-h100-2026-11-26/ttft.mjs http://127.0.0.1:8393 32768 5 1000 2> $R/ttft-32k-2mamba.txt > /dev/null
kill -INT $pid; wait $pid 2>/dev/null
nvidia-smi --query-gpu=clocks.sm,clocks.mem --format=csv >> $R/gpu.txt 2>&1
tar -C $OUT -czf $OUT/r.tgz r && rm -rf $R
