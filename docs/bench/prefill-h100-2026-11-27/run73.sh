#!/bin/bash
# issue 12: what attn_mma's rescales of O cost (ABL=norescale: never rescaled, wrong values), softmax and 2Mamba-E
set -u
R=$OUT/r; mkdir -p $R
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem --format=csv; date -u; } > $R/gpu.txt 2>&1
A="node docs/bench/attn-h100-2026-11-26/attn.mjs"
for c in "4096 4096 20 e" "4096 4096 20 softmax" "1024 7168 20 e"; do
  for abl in "" norescale "" norescale; do ABL=$abl FURY_PROFILE_KERNELS=1 timeout 60 $A dist $c 2>&1 | grep -E "^\{|rror" >> $R/probe.txt; done
done
nvidia-smi --query-gpu=clocks.sm,clocks.mem --format=csv >> $R/gpu.txt 2>&1
tar -C $OUT -czf $OUT/r.tgz r && rm -rf $R
