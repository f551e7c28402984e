#!/bin/bash
# issue 12, gemm_mma's shape: 4 or 8 subgroups (FURY_MMA_SUBGROUPS), K steps of 32 or 64 (FURY_MMA_K): the matmul
# tests on real tensor cores under each, then prefill of an 8k prompt (softmax, 2Mamba) in steps of 4096 under each.
set -u
R=$OUT/r; mkdir -p $R
F='deprecated builtin\|^ *\^\|subgroupMatrix\|^warning:\|Compilation log\|warning(s) generated\|^$'
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem --format=csv; date -u; } > $R/gpu.txt 2>&1
for c in "4 32" "8 32" "4 64" "8 64"; do
  set -- $c
  echo "== SG=$1 K=$2" >> $R/tests.txt
  FURY_MMA_SUBGROUPS=$1 FURY_MMA_K=$2 timeout 60 node --test --test-reporter=spec dist/test/kernels/matmul.test.js 2>&1 | grep -v "$F" | grep -E "^ℹ (tests|pass|fail)|✖|rel" >> $R/tests.txt
done
B="node dist/cli/fury.js bench --preset small --batch 1 --steps 3 --prefill-chunk 4096 --arch softmax,2mamba --context 8192"
for c in "4 32" "8 32" "4 64" "8 64" "4 32" "8 32"; do
  set -- $c
  echo "== SG=$1 K=$2" >> $R/bench.txt
  FURY_MMA_SUBGROUPS=$1 FURY_MMA_K=$2 timeout 80 $B 2>&1 | grep -E "fury bench: (2mamba|softmax) B|rror" | grep -v "$F" | sed 's/snapshot.*//' >> $R/bench.txt
done
nvidia-smi --query-gpu=clocks.sm,clocks.mem --format=csv >> $R/gpu.txt 2>&1
tar -C $OUT -czf $OUT/r.tgz r && rm -rf $R
