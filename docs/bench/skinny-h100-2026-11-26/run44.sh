#!/bin/bash
# issue 12: gemm_skinny (batched decode's projections on tensor cores): matmul tests on real subgroup matrices; decode
# at batch 8/16/32 with and without it (FURY_SKINNY_MIN_ROWS=0), its shapes at batch 32, the KV models at batch 32
set -u
R=$OUT/r; mkdir -p $R
F='deprecated builtin\|^ *\^\|subgroupMatrix\|^warning:\|Compilation log\|warning(s) generated\|^$'
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem --format=csv; date -u; } > $R/gpu.txt 2>&1
timeout 120 node --test --test-reporter=spec dist/test/kernels/matmul.test.js 2>&1 | grep -v "$F" > $R/tests.txt
B="node dist/cli/fury.js bench --preset small --steps 30 --prefill-cap 1024 --context 8192"
for cfg in "M=0 S=4,1,2 A=2mamba N=1,8,16,32 X=--profile" "M=8 S=4,1,2 A=2mamba N=8,16,32 X=--profile" "M=8 S=8,1,2 A=2mamba N=32 X=" "M=8 S=4,2,2 A=2mamba N=32 X=" "M=8 S=2,1,4 A=2mamba N=32 X=" "M=8 S=4,1,4 A=2mamba N=32 X=" "M=8 S=8,1,1 A=2mamba N=32 X=" "M=0 S=4,1,2 A=softmax,2mamba-e N=32 X=" "M=8 S=4,1,2 A=softmax,2mamba-e N=32 X=--profile"; do
  echo "== $cfg" >> $R/bench.txt
  env $cfg FURY_PROFILE_KERNELS=1 bash -c 'FURY_SKINNY_MIN_ROWS=$M FURY_SKINNY_SHAPE=$S timeout 150 "$@" --arch $A --batch $N $X' _ $B 2>&1 | grep -E "fury bench: (2mamba|softmax|profile)|rror" | grep -v "$F" >> $R/bench.txt
done
nvidia-smi --query-gpu=clocks.sm,clocks.mem --format=csv >> $R/gpu.txt 2>&1
tar -C $OUT -czf $OUT/r.tgz r && rm -rf $R
