#!/bin/bash
# issue 12: Dawn's disable_workgroup_init toggle (Tint's zeroing of workgroup memory at every workgroup's start) and
# 2 state rows a thread at batch 1 (FURY_M2_RPT=2,8), against the defaults, alternated: 2Mamba prefill of an 8k
# prompt in steps of 4096 and batch-1 decode (--profile: GPU ms of a step in one pass).
set -u
R=$OUT/r; mkdir -p $R
F='deprecated builtin\|^ *\^\|subgroupMatrix\|^warning:\|Compilation log\|warning(s) generated\|^$'
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem --format=csv; date -u; } > $R/gpu.txt 2>&1
B="node dist/cli/fury.js bench --preset small --arch 2mamba --batch 1 --context 8192 --steps 300 --prefill-chunk 4096 --profile --json"
run() { echo "== $1" >> $R/bench.txt; shift; timeout 80 "$@" 2>&1 | grep -E "^\{|rror" | grep -v "$F" >> $R/bench.txt; }
for i in 1 2; do
  run "default" $B
  run "disable_workgroup_init" env FURY_DAWN_TOGGLES=disable_workgroup_init $B
done
run "rpt 2" env FURY_M2_RPT=2,8 $B
nvidia-smi --query-gpu=clocks.sm,clocks.mem --format=csv >> $R/gpu.txt 2>&1
tar -C $OUT -czf $OUT/r.tgz r && rm -rf $R
