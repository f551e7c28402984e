#!/bin/bash
# issue 12: what each kernel costs inside a whole prefill step (not in a pass of its own): 8k prompts in steps of 4096,
# each kernel in turn made to return at once (abl.mjs; wrong values), 2Mamba and 2Mamba-E
set -u
R=$OUT/r; mkdir -p $R
F='deprecated builtin\|^ *\^\|subgroupMatrix\|^warning:\|Compilation log\|warning(s) generated\|^$'
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem --format=csv; date -u; } > $R/gpu.txt 2>&1
B="bench --preset small --batch 1 --steps 3 --prefill-chunk 4096 --context 8192"
run() { # arch kernel
  echo "== $1 without $2" >> $R/bench.txt
  if [ "$2" = none ]; then timeout 60 node dist/cli/fury.js $B --arch $1 2>&1 | grep -E "fury bench: .* B|rror" | grep -v "$F" | sed 's/snapshot.*//' >> $R/bench.txt
  else ABL_KERNEL=$2 ABL_RE='(fn main\([^{]*?\)\s*\{)' ABL_TO='$1 return;' timeout 60 node docs/bench/prefill-h100-2026-11-27/abl.mjs dist $B --arch $1 2>&1 | grep -E "fury bench: .* B|rror" | grep -v "$F" | sed 's/snapshot.*//' >> $R/bench.txt; fi
}
for k in none gemm_mma gemm_in16 conv2 m2_cumsum m2_scores m2_update_mma m2_scan m2_read_mma m2_combine none; do run 2mamba $k; done
for k in none attn_mma attn_reduce kv_cumsum kv_append conv2 gemm_in16 none; do run 2mamba-e $k; done
nvidia-smi --query-gpu=clocks.sm,clocks.mem --format=csv >> $R/gpu.txt 2>&1
tar -C $OUT -czf $OUT/r.tgz r && rm -rf $R
