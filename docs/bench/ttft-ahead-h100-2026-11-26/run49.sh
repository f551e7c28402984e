#!/bin/bash
# issue 12: where a 4096-row prefill step goes (2Mamba, softmax; per-kernel GPU times), and the 1024-row step
set -u
R=$OUT/r; mkdir -p $R
F='deprecated builtin\|^ *\^\|subgroupMatrix\|^warning:\|Compilation log\|warning(s) generated\|^$'
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem --format=csv; date -u; } > $R/gpu.txt 2>&1
B="node dist/cli/fury.js bench --preset small --steps 3 --batch 1 --context 8192 --prefill-cap 8192 --profile --json"
for cfg in "A=2mamba P=4096" "A=2mamba P=1024" "A=softmax P=4096"; do
  echo "== $cfg" >> $R/bench.txt
  env $cfg FURY_PROFILE_KERNELS=1 bash -c 'timeout 200 "$@" --arch $A --prefill-chunk $P' _ $B 2>&1 | grep -E "^\{|rror" | grep -v "$F" >> $R/bench.txt
done
nvidia-smi --query-gpu=clocks.sm,clocks.mem --format=csv >> $R/gpu.txt 2>&1
tar -C $OUT -czf $OUT/r.tgz r && rm -rf $R
