#!/bin/bash
# issue 12 probe (not kept): what slows the 2Mamba readout: PROBE=1 no φ formation, 2 no S loads, 3 no n loads
set -u
R=$OUT/r; mkdir -p $R
F='deprecated builtin\|^ *\^\|subgroupMatrix\|^warning:\|Compilation log\|warning(s) generated\|^$'
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem --format=csv; date -u; } > $R/gpu.txt 2>&1
B="node dist/cli/fury.js bench --preset small --arch 2mamba --batch 1 --steps 2 --prefill-chunk 1024 --context 8192 --prefill-cap 8192 --profile"
for pr in 0 1 2 3 0; do
  echo "== PROBE=$pr" >> $R/bench.txt
  PROBE=$pr FURY_PROFILE_KERNELS=1 timeout 120 $B 2>&1 | grep -E "fury bench: profile 2mamba prefill|rror" | grep -v "$F" >> $R/bench.txt
done
tar -C $OUT -czf $OUT/r.tgz r && rm -rf $R
