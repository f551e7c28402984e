#!/bin/bash
# issue 12, batch 1: (1) probe4 — a chain of 20 MLP blocks of one row as 40 dispatches against one persistent dispatch
# whose phases hand x and h over through tagged words; (2) does the host's encode per step depend on which cores the
# process runs on? fury bench at batch 1 under taskset, four core sets, twice each.
set -u
R=$OUT/r; mkdir -p $R
F='deprecated builtin\|^ *\^\|subgroupMatrix\|^warning:\|Compilation log\|warning(s) generated\|^$\|^Warning: max'
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem --format=csv; date -u; nvidia-smi topo -m; lscpu; numactl -H; } > $R/gpu.txt 2>&1
timeout 240 node docs/bench/ticks-h100-2026-11-27/probe4.mjs dist 20 132,264,528,1056 2>&1 | grep -v "$F" > $R/probe4.txt
B="bench --preset small --arch 2mamba --context 8192 --steps 300 --prefill-cap 512 --prefill-chunk 512 --batch 1 --json"
run() { echo "== $1" >> $R/bench.txt; shift; timeout 90 "$@" 2>&1 | grep -E "^\{|rror" | grep -v "$F" >> $R/bench.txt; }
N=$(nproc)
for i in 1 2; do
  run "all cores" node dist/cli/fury.js $B
  for s in 0 $((N/4)) $((N/2)) $((3*N/4)); do run "cores $s-$((s+N/4-1))" taskset -c $s-$((s+N/4-1)) node dist/cli/fury.js $B; done
done
nvidia-smi --query-gpu=clocks.sm,clocks.mem --format=csv >> $R/gpu.txt 2>&1
tar -C $OUT -czf $OUT/r.tgz r && rm -rf $R
