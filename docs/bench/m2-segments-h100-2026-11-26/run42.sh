#!/bin/bash
# issue 12: end-of-session prefill throughput of the three architectures (8k prompt, steps of 1024 rows; 2Mamba also
# 4096), twice each, and one profile each
set -u
R=$OUT/r; mkdir -p $R
F='deprecated builtin\|^ *\^\|subgroupMatrix\|^warning:\|Compilation log\|warning(s) generated\|^$'
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem --format=csv; date -u; } > $R/gpu.txt 2>&1
B="node dist/cli/fury.js bench --preset small --batch 1 --steps 3 --context 8192 --prefill-cap 8192"
for cfg in "A=softmax K=1024 X=" "A=2mamba-e K=1024 X=" "A=2mamba K=1024 X=" "A=2mamba K=4096 X=" "A=softmax K=1024 X=" "A=2mamba-e K=1024 X=" "A=2mamba K=1024 X=" "A=softmax K=1024 X=--profile" "A=2mamba-e K=1024 X=--profile" "A=2mamba K=1024 X=--profile"; do
  echo "== $cfg" >> $R/bench.txt
  env $cfg FURY_PROFILE_KERNELS=1 bash -c 'timeout 150 "$@" --arch $A --prefill-chunk $K $X' _ $B 2>&1 | grep -E "fury bench: (2mamba|softmax|profile .* prefill)|rror" | grep -v "$F" >> $R/bench.txt
done
nvidia-smi --query-gpu=clocks.sm,clocks.mem --format=csv >> $R/gpu.txt 2>&1
tar -C $OUT -czf $OUT/r.tgz r && rm -rf $R
