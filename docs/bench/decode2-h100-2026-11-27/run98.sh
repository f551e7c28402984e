#!/bin/bash
# issue 12, batch-1 decode: the one-row GEMV and m2_out1 without the step-meta read, against v0, alternated (GPU ms of
# a step in one pass); m2_state1 with its slot and position taken as constants (abl: what the meta read before its
# S loads costs; results wrong); the matmul + mamba2 kernel tests and the 2Mamba tiny model's fixtures on the H100.
set -u
R=$OUT/r; mkdir -p $R
F='deprecated builtin\|^ *\^\|subgroupMatrix\|^warning:\|Compilation log\|warning(s) generated\|^$\|^Warning: max'
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem --format=csv; date -u; } > $R/gpu.txt 2>&1
B="bench --preset small --arch 2mamba --context 8192 --steps 200 --prefill-cap 512 --prefill-chunk 512 --batch 1 --profile --json"
run() { echo "== $1" >> $R/bench.txt; shift; timeout 80 "$@" 2>&1 | grep -E "^\{|rror" | grep -v "$F" >> $R/bench.txt; }
for i in 1 2; do
  run "v0" node .gpu/dist-v0/cli/fury.js $B
  run "new" node dist/cli/fury.js $B
done
run "abl m2_state1 slot" env ABL_KERNEL=m2_state1 ABL_RE='seqSlot\(s\)|seqPos\(s\)' ABL_TO='(1u + 0u * s)' node docs/bench/decode1-h100-2026-11-27/abl.mjs dist $B
run "new round 16" env FURY_M2_OUT_ROUND=16 node dist/cli/fury.js $B
timeout 120 node --test --test-reporter=spec dist/test/kernels/matmul.test.js dist/test/kernels/mamba2.test.js 2>&1 | grep -v "$F" > $R/tests.txt
timeout 60 node --test --test-reporter=spec --test-name-pattern="fury-2mamba-tiny" dist/test/engine/fixtures.test.js 2>&1 | grep -v "$F" >> $R/tests.txt
nvidia-smi --query-gpu=clocks.sm,clocks.mem --format=csv >> $R/gpu.txt 2>&1
tar -C $OUT -czf $OUT/r.tgz r && rm -rf $R
