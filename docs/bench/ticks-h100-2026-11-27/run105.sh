#!/bin/bash
# issue 12: (1) probe4 again, the persistent chain's values staged in one round of loads; (2) dawn.node's ticks paced
# (tick.mjs, TICK_US 0 / 10 / 25 / 50, alternated, twice): 2Mamba decode at batch 1 and 32 (8k), GC, stalls, encode;
# (3) the expert PyTorch anchor in the same lease.
set -u
R=$OUT/r; mkdir -p $R
F='deprecated builtin\|^ *\^\|subgroupMatrix\|^warning:\|Compilation log\|warning(s) generated\|^$\|^Warning: max'
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem --format=csv; date -u; } > $R/gpu.txt 2>&1
D=docs/bench/ticks-h100-2026-11-27
timeout 150 node $D/probe4.mjs dist 20 264,528 2>&1 | grep -v "$F" > $R/probe4.txt
B="bench --preset small --arch 2mamba --context 8192 --steps 300 --prefill-cap 512 --prefill-chunk 512 --batch 1,32 --json"
run() { echo "== $1" >> $R/bench.txt; shift; timeout 90 "$@" 2>&1 | grep -E "^\{|rror" | grep -v "$F" >> $R/bench.txt; }
for i in 1 2; do
  for t in 0 10 25 50; do run "tick $t" env TICK_US=$t node --import ./$D/tick.mjs dist/cli/fury.js $B; done
done
mkdir -p $R/anchor && timeout 200 python .gpu/anchor_2mamba.py $R/anchor mamba > $R/anchor/log.txt 2>&1
nvidia-smi --query-gpu=clocks.sm,clocks.mem --format=csv >> $R/gpu.txt 2>&1
tar -C $OUT -czf $OUT/r.tgz r && rm -rf $R
