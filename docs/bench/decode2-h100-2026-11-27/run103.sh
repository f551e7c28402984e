#!/bin/bash
# issue 12: v0 (ac3e948) against the final build (naps only from 4 ms readbacks), alternated, 2Mamba decode at batch 1
# and 32 (8k), and the final build's one-pass GPU time at batch 1.
set -u
R=$OUT/r; mkdir -p $R
F='deprecated builtin\|^ *\^\|subgroupMatrix\|^warning:\|Compilation log\|warning(s) generated\|^$\|^Warning: max'
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem --format=csv; date -u; } > $R/gpu.txt 2>&1
B="bench --preset small --arch 2mamba --context 8192 --steps 200 --prefill-cap 512 --prefill-chunk 512 --batch 1,32 --json"
run() { echo "== $1" >> $R/bench.txt; shift; timeout 80 "$@" 2>&1 | grep -E "^\{|rror" | grep -v "$F" >> $R/bench.txt; }
for i in 1 2; do
  run "v0" node .gpu/dist-v0/cli/fury.js $B
  run "final" node dist/cli/fury.js $B
done
nvidia-smi --query-gpu=clocks.sm,clocks.mem --format=csv >> $R/gpu.txt 2>&1
tar -C $OUT -czf $OUT/r.tgz r && rm -rf $R
