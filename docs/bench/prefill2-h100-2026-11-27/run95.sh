#!/bin/bash
# issue 12: the [qkv | A] projection writing f16 for conv2 (gemm_mma's f16 out) against v2 (the build of run94),
# alternated: 2Mamba prefill of an 8k prompt in steps of 4096; 2Mamba at 32k; the matmul kernel tests on real subgroup
# matrices and the 2Mamba tiny model's fixtures.
set -u
R=$OUT/r; mkdir -p $R
F='deprecated builtin\|^ *\^\|subgroupMatrix\|^warning:\|Compilation log\|warning(s) generated\|^$'
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem --format=csv; date -u; } > $R/gpu.txt 2>&1
timeout 60 node --test --test-reporter=spec --test-name-pattern="tensor-core|qkv" dist/test/kernels/matmul.test.js 2>&1 | grep -v "$F" > $R/tests.txt
timeout 60 node --test --test-reporter=spec --test-name-pattern="fury-2mamba-tiny" dist/test/engine/fixtures.test.js 2>&1 | grep -v "$F" >> $R/tests.txt
B="bench --preset small --arch 2mamba --batch 1 --context 8192 --steps 20 --prefill-chunk 4096 --json"
run() { echo "== $1" >> $R/bench.txt; shift; timeout 60 "$@" 2>&1 | grep -E "^\{|rror" | grep -v "$F" >> $R/bench.txt; }
for i in 1 2; do
  run "v2" node .gpu/dist-v2/cli/fury.js $B
  run "new" node dist/cli/fury.js $B
done
P="node dist/cli/fury.js bench --preset small --batch 1 --steps 3 --prefill-chunk 4096"
p() { timeout 70 "$@" 2>&1 | grep -E "fury bench: (2mamba|softmax)|rror" | grep -v "$F" | sed 's/snapshot.*//' >> $R/prefill.txt; }
p $P --arch 2mamba --context 8192 --out $R/prefill-8192.json
p $P --arch 2mamba --context 32768 --prefill-cap 32768 --out $R/prefill-32768.json
nvidia-smi --query-gpu=clocks.sm,clocks.mem --format=csv >> $R/gpu.txt 2>&1
tar -C $OUT -czf $OUT/r.tgz r && rm -rf $R
