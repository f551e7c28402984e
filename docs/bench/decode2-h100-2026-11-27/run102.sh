#!/bin/bash
# issue 12, the session's end: v0 (the session's first build, ac3e948) against the final build, alternated: 2Mamba
# decode at batch 1 and 32 (8k); prefill of an 8k prompt for the three architectures and server TTFT of a lone 32k
# 2Mamba prompt (final build); every matmul and mamba2 kernel test and the 2Mamba-E tiny model's fixtures on the
# H100; the anchor in the same lease.
set -u
R=$OUT/r; mkdir -p $R
F='deprecated builtin\|^ *\^\|subgroupMatrix\|^warning:\|Compilation log\|warning(s) generated\|^$\|^Warning: max'
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem --format=csv; date -u; } > $R/gpu.txt 2>&1
timeout 150 node --test --test-reporter=spec dist/test/kernels/mamba2.test.js dist/test/kernels/matmul.test.js 2>&1 | grep -v "$F" > $R/tests.txt
timeout 90 node --test --test-reporter=spec --test-name-pattern="fury-2mamba-e-tiny" dist/test/engine/fixtures.test.js 2>&1 | grep -v "$F" >> $R/tests.txt
B="bench --preset small --arch 2mamba --context 8192 --steps 300 --prefill-cap 512 --prefill-chunk 512 --batch 1,32 --json"
run() { echo "== $1" >> $R/bench.txt; shift; timeout 90 "$@" 2>&1 | grep -E "^\{|rror" | grep -v "$F" >> $R/bench.txt; }
for i in 1 2; do
  run "v0" node .gpu/dist-v0/cli/fury.js $B
  run "final" node dist/cli/fury.js $B
done
run "final profile b1" node dist/cli/fury.js bench --preset small --arch 2mamba --context 8192 --steps 100 --prefill-cap 512 --prefill-chunk 512 --batch 1 --profile --json
P="node dist/cli/fury.js bench --preset small --batch 1 --steps 3 --prefill-chunk 4096 --context 8192"
p() { timeout 100 "$@" 2>&1 | grep -E "fury bench: |rror" | grep -v "$F" | sed 's/snapshot.*//' >> $R/prefill.txt; }
for a in 2mamba softmax 2mamba-e; do p $P --arch $a --out $R/prefill-8192-$a.json; done
node dist/cli/fury.js init --arch 2mamba --preset small --dtype f16 --out /tmp/small-2mamba > /dev/null 2>&1
node dist/cli/fury.js serve --model m=/tmp/small-2mamba --port 8393 --max-model-len 40000 > /dev/null 2>&1 & pid=$!
timeout 60 node docs/bench/ttft-h100-2026-11-26/ttft.mjs http://127.0.0.1:8393 32768 5 1000 2> $R/ttft-32k-2mamba.txt > /dev/null
kill -INT $pid; wait $pid 2>/dev/null
mkdir -p $R/anchor && timeout 200 python .gpu/anchor_2mamba.py $R/anchor mamba > $R/anchor/log.txt 2>&1
nvidia-smi --query-gpu=clocks.sm,clocks.mem --format=csv >> $R/gpu.txt 2>&1
tar -C $OUT -czf $OUT/r.tgz r && rm -rf $R
