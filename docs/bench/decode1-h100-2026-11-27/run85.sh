#!/bin/bash
# issue 12, 2Mamba batch-1 decode with the readout combine and the o projection in one kernel (m2_out1): kernel tests
# on the H100 (mamba2, matmul, rows) and the 2Mamba tiny model's fixtures; the session's first build (v0, d7b3fd3)
# against this one in the same lease, alternated (--profile: GPU ms of a step in one pass; plain: ms/step at batch 1
# and 32); a fixed prompt's 32 greedy tokens from a v0 server and from this one; the expert anchor.
set -u
R=$OUT/r; mkdir -p $R
F='deprecated builtin\|^ *\^\|subgroupMatrix\|^warning:\|Compilation log\|warning(s) generated\|^$'
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem --format=csv; date -u; } > $R/gpu.txt 2>&1
timeout 150 node --test --test-reporter=spec dist/test/kernels/mamba2.test.js dist/test/kernels/matmul.test.js dist/test/kernels/rows.test.js 2>&1 | grep -v "$F" > $R/tests.txt
timeout 60 node --test --test-reporter=spec --test-name-pattern="fury-2mamba-tiny" dist/test/engine/fixtures.test.js 2>&1 | grep -v "$F" >> $R/tests.txt
B="bench --preset small --arch 2mamba --context 8192 --steps 300 --prefill-cap 512 --prefill-chunk 512 --json"
run() { echo "== $1" >> $R/bench.txt; shift; timeout 70 "$@" 2>&1 | grep -E "^\{|rror" | grep -v "$F" >> $R/bench.txt; }
run "v0 profile" node .gpu/dist-v0/cli/fury.js $B --batch 1 --profile
run "new profile" node dist/cli/fury.js $B --batch 1 --profile
for i in 1 2; do
  run "v0" node .gpu/dist-v0/cli/fury.js $B --batch 1,32
  run "new" node dist/cli/fury.js $B --batch 1,32
done
node dist/cli/fury.js init --arch 2mamba --preset small --dtype f16 --out /tmp/small-2mamba > /dev/null 2>&1
for v in .gpu/dist-v0 dist; do
  node $v/cli/fury.js serve --model m=/tmp/small-2mamba --port 8393 > /dev/null 2>&1 & pid=$!
  echo "$v $(timeout 60 node docs/bench/prefill-h100-2026-11-27/same.mjs http://127.0.0.1:8393 3000 32)" >> $R/same.txt
  kill -INT $pid; wait $pid 2>/dev/null
done
mkdir -p $R/anchor && timeout 150 python .gpu/anchor_2mamba.py $R/anchor mamba > $R/anchor/log.txt 2>&1
nvidia-smi --query-gpu=clocks.sm,clocks.mem --format=csv >> $R/gpu.txt 2>&1
tar -C $OUT -czf $OUT/r.tgz r && rm -rf $R
