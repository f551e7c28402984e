#!/bin/bash
# issue 12: the paced ticks as built (FURY_DAWN_TICK_US default 25 against 0, alternated, twice): 2Mamba decode at batch
# 1 and 32 (8k); the KV models at batch 32 (softmax 4096 and 8k, 2Mamba-E 8k, f16 KV), paced; on the H100: the ticks
# test, the sampler's near ties (rows.test), matmul tests (the refactor), the 2Mamba tiny fixtures; HF Llama's anchor.
set -u
R=$OUT/r; mkdir -p $R
F='deprecated builtin\|^ *\^\|subgroupMatrix\|^warning:\|Compilation log\|warning(s) generated\|^$\|^Warning: max'
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem --format=csv; date -u; } > $R/gpu.txt 2>&1
timeout 150 node --test --test-reporter=spec dist/test/kernels/ticks.test.js dist/test/kernels/rows.test.js dist/test/kernels/matmul.test.js 2>&1 | grep -v "$F" > $R/tests.txt
timeout 90 node --test --test-reporter=spec --test-name-pattern="fury-2mamba-tiny" dist/test/engine/fixtures.test.js 2>&1 | grep -v "$F" >> $R/tests.txt
B="bench --preset small --arch 2mamba --context 8192 --steps 300 --prefill-cap 512 --prefill-chunk 512 --batch 1,32 --json"
run() { echo "== $1" >> $R/bench.txt; shift; timeout 120 "$@" 2>&1 | grep -E "^\{|rror" | grep -v "$F" >> $R/bench.txt; }
for i in 1 2; do
  run "paced" node dist/cli/fury.js $B
  run "unpaced" env FURY_DAWN_TICK_US=0 node dist/cli/fury.js $B
done
K="bench --preset small --steps 100 --prefill-cap 512 --prefill-chunk 512 --batch 32 --json"
run "softmax paced" node dist/cli/fury.js $K --arch softmax --context 4096,8192
run "2mamba-e paced" node dist/cli/fury.js $K --arch 2mamba-e --context 8192
mkdir -p $R/anchor && timeout 240 python .gpu/anchor_2mamba.py $R/anchor hf > $R/anchor/log.txt 2>&1
nvidia-smi --query-gpu=clocks.sm,clocks.mem --format=csv >> $R/gpu.txt 2>&1
tar -C $OUT -czf $OUT/r.tgz r && rm -rf $R
