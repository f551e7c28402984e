#!/bin/bash
# issue 12: 2Mamba's segment kernels against their grid (a 4096-row step at 4k, m2.mjs): readout splits 1-4
# (FURY_M2_READ_SPLITS; 512 workgroups at 2 against ~3-4 resident per SM on 132 SMs) and segments of 2048 rows
set -u
R=$OUT/r; mkdir -p $R
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem --format=csv; date -u; } > $R/gpu.txt 2>&1
M="node docs/bench/prefill-h100-2026-11-27/m2.mjs"
for cfg in "FURY_M2_READ_SPLITS=2" "FURY_M2_READ_SPLITS=1" "FURY_M2_READ_SPLITS=3" "FURY_M2_READ_SPLITS=4" "FURY_M2_READ_SPLITS=2 FURY_M2_SEGMENT=2048" "FURY_M2_READ_SPLITS=4 FURY_M2_SEGMENT=2048" "FURY_M2_READ_SPLITS=2 FURY_M2_SEGMENT=512" "FURY_M2_READ_SPLITS=2"; do
  echo "== $cfg" >> $R/m2.txt
  env $cfg FURY_PROFILE_KERNELS=1 timeout 60 $M dist 4096 4096 10 2>&1 | grep -E "^\{|rror" >> $R/m2.txt
done
nvidia-smi --query-gpu=clocks.sm,clocks.mem --format=csv >> $R/gpu.txt 2>&1
tar -C $OUT -czf $OUT/r.tgz r && rm -rf $R
