#!/bin/bash
# issue 12: the 2Mamba readout with φ formed straight from x (8 KiB of workgroup memory): 8k prefill profiles for readout
# splits 4 / 2 / 8 and 8k throughput
set -u
R=$OUT/r; mkdir -p $R
F='deprecated builtin\|^ *\^\|subgroupMatrix\|^warning:\|Compilation log\|warning(s) generated\|^$'
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem --format=csv; date -u; } > $R/gpu.txt 2>&1
B="node dist/cli/fury.js bench --preset small --arch 2mamba --batch 1 --prefill-chunk 1024 --context 8192 --prefill-cap 8192"
for cfg in "P=4 X=--profile" "P=2 X=--profile" "P=8 X=--profile" "P=4 X=--steps=5"; do
  echo "== $cfg" >> $R/bench.txt
  env $cfg FURY_PROFILE_KERNELS=1 bash -c 'FURY_M2_READ_SPLITS=$P timeout 120 "$@" --steps 2 $X --json --out $R/b-$P-$RANDOM.json' _ $B 2>&1 | grep -E "fury bench: (2mamba B|profile 2mamba prefill)|rror" | grep -v "$F" >> $R/bench.txt
done
tar -C $OUT -czf $OUT/r.tgz r && rm -rf $R
