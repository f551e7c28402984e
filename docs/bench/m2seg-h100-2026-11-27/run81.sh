#!/bin/bash
# issue 12: the 2Mamba state update with 128 state rows per workgroup (FURY_M2_UPDATE_ROWS=128) now that every segment
# runs at once, segments of 1024 and 512; mamba2 kernel tests with it on real tensor cores; the softmax tiny model's
# fixtures with attn_mma's new walk
set -u
R=$OUT/r; mkdir -p $R
F='deprecated builtin\|^ *\^\|subgroupMatrix\|^warning:\|Compilation log\|warning(s) generated\|^$'
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem --format=csv; date -u; } > $R/gpu.txt 2>&1
FURY_M2_UPDATE_ROWS=128 timeout 100 node --test --test-reporter=spec dist/test/kernels/mamba2.test.js 2>&1 | grep -v "$F" > $R/tests.txt
timeout 100 node --test --test-reporter=spec --test-name-pattern="fury-softmax-tiny" dist/test/engine/fixtures.test.js 2>&1 | grep -v "$F" >> $R/tests.txt
M="node docs/bench/prefill-h100-2026-11-27/m2.mjs"
for cfg in "FURY_M2_UPDATE_ROWS=64" "FURY_M2_UPDATE_ROWS=128" "FURY_M2_UPDATE_ROWS=64 FURY_M2_SEGMENT=512" "FURY_M2_UPDATE_ROWS=128 FURY_M2_SEGMENT=512"; do
  echo "== $cfg" >> $R/m2.txt
  env $cfg FURY_PROFILE_KERNELS=1 timeout 40 $M dist 4096 4096 10 2>&1 | grep -E "^\{|rror" >> $R/m2.txt
done
B="bench --preset small --batch 1 --steps 3 --prefill-chunk 4096 --context 8192"
for cfg in "FURY_M2_UPDATE_ROWS=64" "FURY_M2_UPDATE_ROWS=128" "FURY_M2_UPDATE_ROWS=64 FURY_M2_SEGMENT=512" "FURY_M2_UPDATE_ROWS=128 FURY_M2_SEGMENT=512"; do
  echo "== $cfg" >> $R/bench.txt
  env $cfg timeout 60 node dist/cli/fury.js $B --arch 2mamba --out $R/bench-2mamba-${cfg//[^0-9]/}.json 2>&1 | grep -E "fury bench: .* B|rror" | grep -v "$F" | sed 's/snapshot.*//' >> $R/bench.txt
done
nvidia-smi --query-gpu=clocks.sm,clocks.mem --format=csv >> $R/gpu.txt 2>&1
tar -C $OUT -czf $OUT/r.tgz r && rm -rf $R
