#!/bin/bash
# issue 12, batch-1 decode: one-row GEMV designs on cold weights (probe2.mjs); m2_state1 with v loaded up front and
# m2_out1's block partials in rounds of FURY_M2_OUT_ROUND loads, against v0 (HEAD before them), alternated, GPU ms of a
# step in one pass.
set -u
R=$OUT/r; mkdir -p $R
F='deprecated builtin\|^ *\^\|subgroupMatrix\|^warning:\|Compilation log\|warning(s) generated\|^$\|^Warning: max'
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem --format=csv; date -u; } > $R/gpu.txt 2>&1
D=docs/bench/decode2-h100-2026-11-27
timeout 150 node $D/probe2.mjs dist 2>&1 | grep -v "$F" > $R/probe2.txt
B="bench --preset small --arch 2mamba --context 8192 --steps 100 --prefill-cap 512 --prefill-chunk 512 --batch 1 --profile --json"
run() { echo "== $1" >> $R/bench.txt; shift; timeout 80 "$@" 2>&1 | grep -E "^\{|rror" | grep -v "$F" >> $R/bench.txt; }
for i in 1 2; do
  run "v0" node .gpu/dist-v0/cli/fury.js $B
  run "new" node dist/cli/fury.js $B
done
for r in 12 17 33; do run "new round $r" env FURY_M2_OUT_ROUND=$r node dist/cli/fury.js $B; done
nvidia-smi --query-gpu=clocks.sm,clocks.mem --format=csv >> $R/gpu.txt 2>&1
tar -C $OUT -czf $OUT/r.tgz r && rm -rf $R
