#!/bin/bash
# issue 12: does prefetching the next kernel's weights into L2 speed a chain of one-row GEMVs (probe3.mjs)?
set -u
R=$OUT/r; mkdir -p $R
F='deprecated builtin\|^ *\^\|subgroupMatrix\|^warning:\|Compilation log\|warning(s) generated\|^$\|^Warning: max'
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem --format=csv; date -u; } > $R/gpu.txt 2>&1
timeout 200 node docs/bench/decode2-h100-2026-11-27/probe3.mjs dist 2>&1 | grep -v "$F" > $R/probe3.txt
nvidia-smi --query-gpu=clocks.sm,clocks.mem --format=csv >> $R/gpu.txt 2>&1
tar -C $OUT -czf $OUT/r.tgz r && rm -rf $R
