#!/bin/bash
# issue 12, batch-1 decode: what a dispatch and a memory-bound kernel cost here (probe.mjs); decode at batch 1 and 32
# with and without --max-semi-space-size=64 (GC fields); one-pass GPU time with the GEMVs / the state pass / m2_out1
# emptied (abl.mjs); one-row GEMV shapes; the 2Mamba-E tiny model's fixtures and the matmul + mamba2 kernel tests on
# the H100; the anchor.
set -u
R=$OUT/r; mkdir -p $R
F='deprecated builtin\|^ *\^\|subgroupMatrix\|^warning:\|Compilation log\|warning(s) generated\|^$'
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem --format=csv; date -u; } > $R/gpu.txt 2>&1
D=docs/bench/decode2-h100-2026-11-27
timeout 60 node $D/probe.mjs dist 2>&1 | grep -v "$F" > $R/probe.txt
B="bench --preset small --arch 2mamba --context 8192 --steps 300 --prefill-cap 512 --prefill-chunk 512 --json"
run() { echo "== $1" >> $R/bench.txt; shift; timeout 80 "$@" 2>&1 | grep -E "^\{|rror" | grep -v "$F" >> $R/bench.txt; }
for i in 1 2; do
  run "b1,32 default" node dist/cli/fury.js $B --batch 1,32
  run "b1,32 semi64" node --max-semi-space-size=64 dist/cli/fury.js $B --batch 1,32
done
P="$B --batch 1 --steps 100 --profile"
run "profile" node dist/cli/fury.js $P
export ABL_RE='(fn main\([^{]*?\)\s*\{)' ABL_TO='$1 return;'
for k in matmul m2_state1 m2_out1; do run "abl $k" env ABL_KERNEL="$k" node $D/../decode1-h100-2026-11-27/abl.mjs dist $P; done
unset ABL_RE ABL_TO
for s in 1,2,64,4 1,4,64,2 1,1,64,2 1,1,128,1 1,2,128,1 1,4,64,1 1,2,64,2; do
  run "shape $s" env FURY_MATMUL_SHAPES="$s;4,4,64,1;8,4,16,4" node dist/cli/fury.js $P
done
timeout 90 node --test --test-reporter=spec dist/test/kernels/matmul.test.js dist/test/kernels/mamba2.test.js 2>&1 | grep -v "$F" > $R/tests.txt
timeout 60 node --test --test-reporter=spec --test-name-pattern="fury-2mamba-e-tiny" dist/test/engine/fixtures.test.js 2>&1 | grep -v "$F" >> $R/tests.txt
mkdir -p $R/anchor && timeout 200 python .gpu/anchor_2mamba.py $R/anchor mamba > $R/anchor/log.txt 2>&1
nvidia-smi --query-gpu=clocks.sm,clocks.mem --format=csv >> $R/gpu.txt 2>&1
tar -C $OUT -czf $OUT/r.tgz r && rm -rf $R
