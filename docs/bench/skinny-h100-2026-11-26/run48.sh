#!/bin/bash
# issue 12: gemm_skinny staged, two steps of loads in flight: matmul/conv2 tests on real
# subgroup matrices; 2Mamba decode at batch 32 over shapes; batch 1/8/16; the KV models at batch 32; the anchors
set -u
R=$OUT/r; mkdir -p $R
F='deprecated builtin\|^ *\^\|subgroupMatrix\|^warning:\|Compilation log\|warning(s) generated\|^$'
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem --format=csv; date -u; } > $R/gpu.txt 2>&1
timeout 120 node --test --test-reporter=spec dist/test/kernels/matmul.test.js 2>&1 | grep -v "$F" > $R/tests.txt
B="node dist/cli/fury.js bench --preset small --steps 30 --prefill-cap 64 --json"
for cfg in "M=8 S=4,1,2 A=2mamba C=8192 N=32" "M=8 S=4,1,4 A=2mamba C=8192 N=32" "M=8 S=8,1,1 A=2mamba C=8192 N=32" "M=0 S=4,1,2 A=2mamba C=8192 N=32" "M=8 S=4,1,2 A=2mamba C=8192 N=1,8,16,32" "M=8 S=4,1,2 A=softmax,2mamba-e C=8192 N=32" "M=8 S=4,1,2 A=softmax C=4096 N=32"; do
  echo "== $cfg" >> $R/bench.txt
  env $cfg bash -c 'FURY_SKINNY_MIN_ROWS=$M FURY_SKINNY_SHAPE=$S timeout 150 "$@" --arch $A --context $C --batch $N' _ $B 2>&1 | grep -E "fury bench: (2mamba|softmax)|^\{|rror" | grep -v "$F" >> $R/bench.txt
done
echo "== profile" >> $R/bench.txt
FURY_PROFILE_KERNELS=1 timeout 150 $B --arch 2mamba --context 8192 --batch 32 --profile 2>&1 | grep -E "^\{|rror" | grep -v "$F" >> $R/bench.txt
mkdir -p $R/anchor && timeout 260 python .gpu/anchor_2mamba.py $R/anchor mamba,hf > $R/anchor/log.txt 2>&1
nvidia-smi --query-gpu=clocks.sm,clocks.mem --format=csv >> $R/gpu.txt 2>&1
tar -C $OUT -czf $OUT/r.tgz r && rm -rf $R
