#!/bin/bash
# issue 12: raw subgroup-matrix multiply throughput with distinct chains, GEMM variants timed by GPU timestamps
set -u
R=$OUT/r; mkdir -p $R
P=docs/bench/tc-probe-2026-11-26/probe.mjs
F='deprecated\|^ *\^\|subgroupMatrix\|^$\|warning\|Compilation log'
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem --format=csv > $R/gpu.txt 2>&1
export DAWN_TOGGLES=disable_robustness
OUT_JSON=$R/mma.json timeout 90 node $P mma global32-1sg 2>&1 | grep -v "$F" > $R/probe.txt
for shape in 1024x4096x1024 4096x4096x4096; do
  for v in global32-4sg global64-4sg staged128x128k32-8sg staged128x128k32-4sg staged64x128k32-4sg staged128x64k64-4sg-wdirect db128x128k32-8sg db128x128k32-4sg; do
    echo "== $v $shape" >> $R/probe.txt
    SHAPES=$shape OUT_JSON=$R/$v-$shape.json timeout 30 node $P $v 2>&1 | grep -v "$F" >> $R/probe.txt
    echo "rc=${PIPESTATUS[0]}" >> $R/probe.txt
  done
done
nvidia-smi --query-gpu=clocks.sm,clocks.mem --format=csv >> $R/gpu.txt 2>&1
tar -C $OUT -czf $OUT/r.tgz r && rm -rf $R
