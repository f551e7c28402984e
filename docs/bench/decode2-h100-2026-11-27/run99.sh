#!/bin/bash
# issue 12, batch-1 decode: v0 (HEAD before this session) against the new build (GEMV/out1/state without the meta read
# for their row, gather_last folded into the logits' projection), alternated three times (GPU ms of a step in one pass,
# and ms a step without the profile); abl: the new build with m2_state1's slot and position constants (what the meta
# read in front of its S loads costs; results wrong).
set -u
R=$OUT/r; mkdir -p $R
F='deprecated builtin\|^ *\^\|subgroupMatrix\|^warning:\|Compilation log\|warning(s) generated\|^$\|^Warning: max'
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem --format=csv; date -u; } > $R/gpu.txt 2>&1
B="bench --preset small --arch 2mamba --context 8192 --steps 200 --prefill-cap 512 --prefill-chunk 512 --batch 1 --json"
run() { echo "== $1" >> $R/bench.txt; shift; timeout 80 "$@" 2>&1 | grep -E "^\{|rror" | grep -v "$F" >> $R/bench.txt; }
for i in 1 2 3; do
  run "v0 profile" node .gpu/dist-v0/cli/fury.js $B --profile
  run "new profile" node dist/cli/fury.js $B --profile
  run "abl profile" node .gpu/dist-abl/cli/fury.js $B --profile
done
for i in 1 2; do
  run "v0" node .gpu/dist-v0/cli/fury.js $B
  run "new" node dist/cli/fury.js $B
done
timeout 60 node --test --test-reporter=spec --test-name-pattern="gather_last" dist/test/kernels/matmul.test.js 2>&1 | grep -v "$F" > $R/tests.txt
timeout 60 node --test --test-reporter=spec --test-name-pattern="fury-2mamba-tiny" dist/test/engine/fixtures.test.js 2>&1 | grep -v "$F" >> $R/tests.txt
nvidia-smi --query-gpu=clocks.sm,clocks.mem --format=csv >> $R/gpu.txt 2>&1
tar -C $OUT -czf $OUT/r.tgz r && rm -rf $R
