#!/bin/bash
# issue 12: m2_scan rewritten (4 vec4 a thread, loads before stores, 33 blocks); every segment at once against segment
# after segment (FURY_M2_BOUNDARY_BYTES=0), segments of 1024 / 512 / 256; the KV models' 8k prefill after the grid fix
# and without rope (abl.mjs: rope returns at once, wrong values: what it costs)
set -u
R=$OUT/r; mkdir -p $R
F='deprecated builtin\|^ *\^\|subgroupMatrix\|^warning:\|Compilation log\|warning(s) generated\|^$'
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem --format=csv; date -u; } > $R/gpu.txt 2>&1
timeout 100 node --test --test-reporter=spec dist/test/kernels/mamba2.test.js 2>&1 | grep -v "$F" > $R/tests.txt
M="node docs/bench/prefill-h100-2026-11-27/m2.mjs"
for cfg in "FURY_M2_BOUNDARY_BYTES=0" "FURY_M2_SEGMENT=1024" "FURY_M2_SEGMENT=512" "FURY_M2_SEGMENT=256" "FURY_M2_BOUNDARY_BYTES=0"; do
  echo "== $cfg" >> $R/m2.txt
  env $cfg FURY_PROFILE_KERNELS=1 timeout 40 $M dist 4096 4096 10 2>&1 | grep -E "^\{|rror" >> $R/m2.txt
done
B="bench --preset small --batch 1 --steps 3 --prefill-chunk 4096"
for cfg in "FURY_M2_BOUNDARY_BYTES=0" "FURY_M2_SEGMENT=1024" "FURY_M2_SEGMENT=512" "FURY_M2_BOUNDARY_BYTES=0"; do
  echo "== $cfg" >> $R/bench.txt
  env $cfg timeout 100 node dist/cli/fury.js $B --arch 2mamba --context 8192,32768 --prefill-cap 32768 --out $R/bench-2mamba-${cfg//[^0-9A-Z]/}.json 2>&1 | grep -E "fury bench: 2mamba B|rror" | grep -v "$F" >> $R/bench.txt
done
for a in 2mamba-e softmax 2mamba-e; do
  echo "== $a" >> $R/bench.txt
  timeout 80 node dist/cli/fury.js $B --arch $a --context 8192 --out $R/bench-$a.json 2>&1 | grep -E "fury bench: .* B|rror" | grep -v "$F" >> $R/bench.txt
  echo "== $a, rope returns at once" >> $R/bench.txt
  ABL_KERNEL=rope ABL_RE='let H = prm.heads;' ABL_TO='return; let H = prm.heads;' timeout 80 node docs/bench/prefill-h100-2026-11-27/abl.mjs dist $B --arch $a --context 8192 --out $R/bench-$a-norope.json 2>&1 | grep -E "fury bench: .* B|rror" | grep -v "$F" >> $R/bench.txt
done
nvidia-smi --query-gpu=clocks.sm,clocks.mem --format=csv >> $R/gpu.txt 2>&1
tar -C $OUT -czf $OUT/r.tgz r && rm -rf $R
