#!/bin/bash
# issue 12, 2Mamba batch-1 decode: where a step's time goes. The bench (8k, 200 steps) as is, with two steps in
# flight, with --profile; then with kernels made to return at once (every kernel; the GEMVs; the state kernel; the
# combine); the expert anchor in the same lease.
set -u
R=$OUT/r; mkdir -p $R
F='deprecated builtin\|^ *\^\|subgroupMatrix\|^warning:\|Compilation log\|warning(s) generated\|^$'
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem --format=csv; date -u; } > $R/gpu.txt 2>&1
A=docs/bench/decode1-h100-2026-11-27/abl.mjs
B="bench --preset small --arch 2mamba --batch 1 --context 8192 --steps 200 --prefill-cap 512 --prefill-chunk 512 --json"
run() { echo "== $1" >> $R/bench.txt; shift; timeout 90 "$@" 2>&1 | grep -E "fury bench: 2mamba B|^\{|rror" | grep -v "$F" >> $R/bench.txt; }
run base node dist/cli/fury.js $B
run inflight2 node dist/cli/fury.js $B --in-flight 2
run profile env FURY_PROFILE_KERNELS=1 node dist/cli/fury.js $B --profile
export ABL_RE='(fn main\([^{]*?\)\s*\{)' ABL_TO='$1 return;'
for k in '*' matmul m2_state1 m2_combine1 'm2_state1,m2_combine1' 'embed,gather_last,sample'; do
  run "abl $k" env ABL_KERNEL="$k" node $A dist $B
done
run base2 node dist/cli/fury.js $B
mkdir -p $R/anchor && timeout 200 python .gpu/anchor_2mamba.py $R/anchor mamba > $R/anchor/log.txt 2>&1
nvidia-smi --query-gpu=clocks.sm,clocks.mem --format=csv >> $R/gpu.txt 2>&1
tar -C $OUT -czf $OUT/r.tgz r && rm -rf $R
