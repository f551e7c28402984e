#!/bin/bash
# issue 12: gemm_skinny with both tiles staged in workgroup memory: matmul tests on real subgroup matrices; 2Mamba
# decode at batch 32 over its shapes and the FMA GEMV's (per-kernel GPU times from --profile's JSON); batch 8 / 16
set -u
R=$OUT/r; mkdir -p $R
F='deprecated builtin\|^ *\^\|subgroupMatrix\|^warning:\|Compilation log\|warning(s) generated\|^$'
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem --format=csv; date -u; } > $R/gpu.txt 2>&1
timeout 120 node --test --test-reporter=spec dist/test/kernels/matmul.test.js 2>&1 | grep -v "$F" > $R/tests.txt
B="node dist/cli/fury.js bench --preset small --steps 20 --prefill-cap 64 --context 8192 --arch 2mamba --profile --json"
for cfg in "M=8 S=4,1,2 N=32" "M=8 S=8,1,1 N=32" "M=8 S=4,2,2 N=32" "M=8 S=4,1,4 N=32" "M=8 S=2,1,4 N=32" "M=8 S=2,2,2 N=32" "M=0 S=4,1,2 N=32" "M=8 S=4,1,2 N=8,16" "M=0 S=4,1,2 N=8,16"; do
  echo "== $cfg" >> $R/bench.txt
  env $cfg FURY_PROFILE_KERNELS=1 bash -c 'FURY_SKINNY_MIN_ROWS=$M FURY_SKINNY_SHAPE=$S timeout 150 "$@" --batch $N' _ $B 2>&1 | grep -E "fury bench: (2mamba B|profile 2mamba decode)|^\{|rror" | grep -v "$F" >> $R/bench.txt
done
nvidia-smi --query-gpu=clocks.sm,clocks.mem --format=csv >> $R/gpu.txt 2>&1
tar -C $OUT -czf $OUT/r.tgz r && rm -rf $R
