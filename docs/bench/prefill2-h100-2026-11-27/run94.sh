#!/bin/bash
# issue 12: m2_scan (the next segment's sums loaded while this one's are stored; the block max in two rounds) and
# m2_combine (several rows a workgroup) against v1 (0839274, run93's build), alternated: 2Mamba prefill of an 8k prompt
# in steps of 4096 (--profile); every kernel's GPU time (FURY_PROFILE_KERNELS=1); the mamba2 and matmul kernel tests on
# real subgroup matrices and the 2Mamba tiny model's fixtures; 2Mamba prefill at 8k and 32k; server TTFT of a lone 32k
# 2Mamba prompt.
set -u
R=$OUT/r; mkdir -p $R
F='deprecated builtin\|^ *\^\|subgroupMatrix\|^warning:\|Compilation log\|warning(s) generated\|^$'
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem --format=csv; date -u; } > $R/gpu.txt 2>&1
timeout 150 node --test --test-reporter=spec dist/test/kernels/mamba2.test.js dist/test/kernels/matmul.test.js 2>&1 | grep -v "$F" > $R/tests.txt
timeout 60 node --test --test-reporter=spec --test-name-pattern="fury-2mamba-tiny" dist/test/engine/fixtures.test.js 2>&1 | grep -v "$F" >> $R/tests.txt
B="bench --preset small --arch 2mamba --batch 1 --context 8192 --steps 30 --prefill-chunk 4096 --profile --json"
run() { echo "== $1" >> $R/bench.txt; shift; timeout 80 "$@" 2>&1 | grep -E "^\{|rror" | grep -v "$F" >> $R/bench.txt; }
run "per kernel" env FURY_PROFILE_KERNELS=1 node dist/cli/fury.js $B
for i in 1 2; do
  run "v1" node .gpu/dist-v1/cli/fury.js $B
  run "new" node dist/cli/fury.js $B
done
P="node dist/cli/fury.js bench --preset small --batch 1 --steps 3 --prefill-chunk 4096"
p() { timeout 100 "$@" 2>&1 | grep -E "fury bench: (2mamba|softmax)|rror" | grep -v "$F" | sed 's/snapshot.*//' >> $R/prefill.txt; }
p $P --arch 2mamba --context 8192 --out $R/prefill-8192.json
p $P --arch 2mamba --context 32768 --prefill-cap 32768 --out $R/prefill-32768.json
node dist/cli/fury.js init --arch 2mamba --preset small --dtype f16 --out /tmp/small-2mamba > /dev/null 2>&1
node dist/cli/fury.js serve --model m=/tmp/small-2mamba --port 8393 --max-model-len 40000 > /dev/null 2>&1 & pid=$!
timeout 60 node docs/bench/ttft-h100-2026-11-26/ttft.mjs http://127.0.0.1:8393 32768 5 1000 2> $R/ttft-32k-2mamba.txt > /dev/null
kill -INT $pid; wait $pid 2>/dev/null
nvidia-smi --query-gpu=clocks.sm,clocks.mem --format=csv >> $R/gpu.txt 2>&1
tar -C $OUT -czf $OUT/r.tgz r && rm -rf $R
