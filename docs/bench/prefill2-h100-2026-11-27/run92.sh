#!/bin/bash
# issue 12: the new build (early submit of a long step; gemm_mma's glu epilogue writes silu(gate)·up as f16 for the down
# projection; the prefill combine writes y as f16 for the o projection; FURY_MMA_SHAPE) against v0 (c758014),
# alternated: 2Mamba prefill of an 8k prompt in steps of 4096 (--profile: GPU ms of each op in one pass); gemm_mma tile
# shapes; the kernel tests on real subgroup matrices.
set -u
R=$OUT/r; mkdir -p $R
F='deprecated builtin\|^ *\^\|subgroupMatrix\|^warning:\|Compilation log\|warning(s) generated\|^$'
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem --format=csv; date -u; } > $R/gpu.txt 2>&1
timeout 200 node --test --test-reporter=spec --test-name-pattern="tensor-core|on tensor cores" dist/test/kernels/matmul.test.js dist/test/kernels/mamba2.test.js 2>&1 | grep -v "$F" > $R/tests.txt
timeout 60 node --test --test-reporter=spec --test-name-pattern="fury-2mamba-tiny" dist/test/engine/fixtures.test.js 2>&1 | grep -v "$F" >> $R/tests.txt
B="bench --preset small --arch 2mamba --batch 1 --context 8192 --steps 30 --prefill-chunk 4096 --profile --json"
run() { echo "== $1" >> $R/bench.txt; shift; timeout 80 "$@" 2>&1 | grep -E "^\{|rror" | grep -v "$F" >> $R/bench.txt; }
run "warm-up" node dist/cli/fury.js $B
for i in 1 2; do
  run "v0" node .gpu/dist-v0/cli/fury.js $B
  run "new" node dist/cli/fury.js $B
done
for s in 128,256,2,4 256,128,4,2 128,256,4,2 128,128,2,2 64,128,2,2; do
  run "shape $s" env FURY_MMA_SHAPE=$s node dist/cli/fury.js $B
done
run "new" node dist/cli/fury.js $B
P="node dist/cli/fury.js bench --preset small --batch 1 --steps 3 --prefill-chunk 4096"
timeout 80 $P --arch 2mamba --context 8192 2>&1 | grep -E "fury bench: 2mamba|rror" | grep -v "$F" | sed 's/snapshot.*//' >> $R/prefill.txt
timeout 80 node .gpu/dist-v0/cli/fury.js bench --preset small --batch 1 --steps 3 --prefill-chunk 4096 --arch 2mamba --context 8192 2>&1 | grep -E "fury bench: 2mamba|rror" | grep -v "$F" | sed 's/snapshot.*//' >> $R/prefill.txt
nvidia-smi --query-gpu=clocks.sm,clocks.mem --format=csv >> $R/gpu.txt 2>&1
tar -C $OUT -czf $OUT/r.tgz r && rm -rf $R
