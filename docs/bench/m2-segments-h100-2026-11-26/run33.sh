#!/bin/bash
# issue 12: the register-tiled 2Mamba readout / update with their stores unrolled (acc kept in registers): 8k prefill
# profiles (readout splits 4 and 2; tensor cores off) and 8k throughput
set -u
R=$OUT/r; mkdir -p $R
F='deprecated builtin\|^ *\^\|subgroupMatrix\|^warning:\|Compilation log\|warning(s) generated\|^$'
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem --format=csv; date -u; } > $R/gpu.txt 2>&1
B="node dist/cli/fury.js bench --preset small --arch 2mamba --batch 1 --steps 5 --prefill-chunk 1024"
for cfg in "S=1024 P=4 M=on C=8192 X=--profile" "S=1024 P=2 M=on C=8192 X=--profile" "S=1024 P=4 M=on C=8192 X="; do
  echo "== $cfg" >> $R/bench.txt
  env $cfg FURY_PROFILE_KERNELS=1 bash -c 'FURY_M2_SEGMENT=$S FURY_M2_READ_SPLITS=$P FURY_MATRICES=$M timeout 120 "$@" --context $C --prefill-cap $C $X --json --out $R/b-$S-$P-$M-$C-$RANDOM.json' _ $B 2>&1 | grep -E "fury bench: (2mamba B|profile)|rror" | grep -v "$F" >> $R/bench.txt
done
nvidia-smi --query-gpu=clocks.sm,clocks.mem --format=csv >> $R/gpu.txt 2>&1
tar -C $OUT -czf $OUT/r.tgz r && rm -rf $R
