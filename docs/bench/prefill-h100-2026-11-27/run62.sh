#!/bin/bash
# issue 12: where an 8k prompt's time goes in the KV models (run61: wall ~20 ms over the GPU's step times): each
# prefill step's wall time, and per-kernel profiles of the first (after 1 token) and second (after 4096) 4096-row steps
set -u
R=$OUT/r; mkdir -p $R
F='deprecated builtin\|^ *\^\|subgroupMatrix\|^warning:\|Compilation log\|warning(s) generated\|^$'
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem --format=csv; date -u; } > $R/gpu.txt 2>&1
B="node dist/cli/fury.js bench --preset small --batch 1 --steps 3"
for cfg in "A=softmax,2mamba-e,2mamba K=4096 C=8192 X=" "A=softmax K=1024 C=8192 X=" "A=softmax,2mamba K=4096 C=1 X=--profile" "A=softmax,2mamba K=4096 C=4096 X=--profile"; do
  echo "== $cfg" >> $R/bench.txt
  eval $cfg
  FURY_PROFILE_KERNELS=1 timeout 200 $B --arch $A --prefill-chunk $K --context $C $X --out $R/bench-${A//,/-}-$K-$C.json 2>&1 | grep -E "fury bench: (2mamba|softmax|profile .* prefill)|rror" | grep -v "$F" >> $R/bench.txt
done
nvidia-smi --query-gpu=clocks.sm,clocks.mem --format=csv >> $R/gpu.txt 2>&1
tar -C $OUT -czf $OUT/r.tgz r && rm -rf $R
