#!/bin/bash
# issue 12: 2Mamba prefill with every segment at once (update into boundary slots, m2_scan, one readout) against
# segment after segment (FURY_M2_BOUNDARY_BYTES=0); segments of 1024 / 512 / 256; kernel tests and the 2Mamba tiny
# model's fixtures on real tensor cores
set -u
R=$OUT/r; mkdir -p $R
F='deprecated builtin\|^ *\^\|subgroupMatrix\|^warning:\|Compilation log\|warning(s) generated\|^$'
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem --format=csv; date -u; } > $R/gpu.txt 2>&1
timeout 150 node --test --test-reporter=spec dist/test/kernels/mamba2.test.js 2>&1 | grep -v "$F" > $R/tests.txt
timeout 120 node --test --test-reporter=spec --test-name-pattern="fury-2mamba-tiny" dist/test/engine/fixtures.test.js 2>&1 | grep -v "$F" >> $R/tests.txt
M="node docs/bench/prefill-h100-2026-11-27/m2.mjs"
for cfg in "FURY_M2_BOUNDARY_BYTES=0" "FURY_M2_SEGMENT=1024" "FURY_M2_SEGMENT=512" "FURY_M2_SEGMENT=256" "FURY_M2_BOUNDARY_BYTES=0 FURY_M2_SEGMENT=512" "FURY_M2_BOUNDARY_BYTES=0"; do
  echo "== $cfg" >> $R/m2.txt
  env $cfg FURY_PROFILE_KERNELS=1 timeout 40 $M dist 4096 4096 10 2>&1 | grep -E "^\{|rror" >> $R/m2.txt
done
for cfg in "FURY_M2_BOUNDARY_BYTES=0" "FURY_M2_SEGMENT=1024" "FURY_M2_SEGMENT=512"; do
  echo "== $cfg" >> $R/bench.txt
  env $cfg timeout 120 node dist/cli/fury.js bench --preset small --batch 1 --steps 3 --arch 2mamba --prefill-chunk 4096 --context 8192,32768 --prefill-cap 32768 --out $R/bench-${cfg//[^0-9A-Z]/}.json 2>&1 | grep -E "fury bench: 2mamba B|rror" | grep -v "$F" >> $R/bench.txt
done
nvidia-smi --query-gpu=clocks.sm,clocks.mem --format=csv >> $R/gpu.txt 2>&1
tar -C $OUT -czf $OUT/r.tgz r && rm -rf $R
