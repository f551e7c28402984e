#!/bin/bash
# issue 12, 2Mamba batch-1 decode after static params bindings, hoisted GEMV/combine/sample loads: kernel tests on
# real tensor cores (matmul, rows, mamba2) and the 2Mamba tiny model's fixtures; the previous build (v0) against this
# one in the same lease (--profile: GPU ms of a step in one pass, per kernel, encode; plain: ms/step), alternated;
# sweeps of the state kernel's rows per thread, the one-row GEMV's shape and Dawn's skip_validation; the anchor.
set -u
R=$OUT/r; mkdir -p $R
F='deprecated builtin\|^ *\^\|subgroupMatrix\|^warning:\|Compilation log\|warning(s) generated\|^$'
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem --format=csv; date -u; } > $R/gpu.txt 2>&1
timeout 150 node --test --test-reporter=spec dist/test/kernels/matmul.test.js dist/test/kernels/rows.test.js dist/test/kernels/mamba2.test.js 2>&1 | grep -v "$F" > $R/tests.txt
timeout 60 node --test --test-reporter=spec --test-name-pattern="fury-2mamba-tiny" dist/test/engine/fixtures.test.js 2>&1 | grep -v "$F" >> $R/tests.txt
B="bench --preset small --arch 2mamba --batch 1 --context 8192 --steps 300 --prefill-cap 512 --prefill-chunk 512 --json"
run() { echo "== $1" >> $R/bench.txt; shift; timeout 60 "$@" 2>&1 | grep -E "^\{|rror" | grep -v "$F" >> $R/bench.txt; }
run "v0 profile" node .gpu/dist-v0/cli/fury.js $B --profile
run "new profile" node dist/cli/fury.js $B --profile
run "v0" node .gpu/dist-v0/cli/fury.js $B
run "new" node dist/cli/fury.js $B
run "v0" node .gpu/dist-v0/cli/fury.js $B
run "new" node dist/cli/fury.js $B
run "new skip_validation" env FURY_DAWN_TOGGLES=skip_validation node dist/cli/fury.js $B
run "new profile rpt 8" env FURY_M2_RPT=8,8 node dist/cli/fury.js $B --profile
run "new profile shape 1,4,32,2" env FURY_MATMUL_SHAPES='1,4,32,2;4,4,64,1;8,4,16,4' node dist/cli/fury.js $B --profile
run "new profile shape 1,2,32,4" env FURY_MATMUL_SHAPES='1,2,32,4;4,4,64,1;8,4,16,4' node dist/cli/fury.js $B --profile
mkdir -p $R/anchor && timeout 150 python .gpu/anchor_2mamba.py $R/anchor mamba > $R/anchor/log.txt 2>&1
nvidia-smi --query-gpu=clocks.sm,clocks.mem --format=csv >> $R/gpu.txt 2>&1
tar -C $OUT -czf $OUT/r.tgz r && rm -rf $R
