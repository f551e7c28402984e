#!/bin/bash
# issue 12, batch 1: why does the host's encode of a step take ~0.55 ms in one process and ~1.0 in the next? The
# batch-1 decode bench (8k, 300 steps) in six processes with the encode split into its parts (dist patched for this
# run: FURY_ENCODE_PARTS prints µs a one-row step in writeMeta, record lookup, the launch loop, finish, submit); the
# last two also under --cpu-prof (100 µs samples).
set -u
R=$OUT/r; mkdir -p $R/prof
F='deprecated builtin\|^ *\^\|subgroupMatrix\|^warning:\|Compilation log\|warning(s) generated\|^$\|^Warning: max'
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem --format=csv; date -u; } > $R/gpu.txt 2>&1
B="bench --preset small --arch 2mamba --context 8192 --steps 300 --prefill-cap 512 --prefill-chunk 512 --batch 1 --json"
for i in 1 2 3 4 5 6; do
  echo "== $i" >> $R/bench.txt
  P=""; [ $i -gt 4 ] && P="--cpu-prof --cpu-prof-interval 100 --cpu-prof-dir $R/prof/$i"
  FURY_ENCODE_PARTS=1 timeout 90 node $P dist/cli/fury.js $B 2>&1 | grep -E "^\{|rror" | grep -v "$F" >> $R/bench.txt
done
nvidia-smi --query-gpu=clocks.sm,clocks.mem --format=csv >> $R/gpu.txt 2>&1
tar -C $OUT -czf $OUT/r.tgz r && rm -rf $R
