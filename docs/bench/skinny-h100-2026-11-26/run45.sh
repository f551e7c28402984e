#!/bin/bash
# issue 12: gemm_skinny shapes at 2Mamba batch 32 (per-kernel GPU times from --profile's JSON), the FMA GEMV's shapes
set -u
R=$OUT/r; mkdir -p $R
F='deprecated builtin\|^ *\^\|subgroupMatrix\|^warning:\|Compilation log\|warning(s) generated\|^$'
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem --format=csv; date -u; } > $R/gpu.txt 2>&1
B="node dist/cli/fury.js bench --preset small --steps 20 --prefill-cap 64 --context 8192 --arch 2mamba --batch 32 --profile --json"
for cfg in "M=8 S=4,1,2 G=1,2,64,2;4,4,64,1;8,4,16,4" "M=8 S=16,1,1 G=1,2,64,2;4,4,64,1;8,4,16,4" "M=8 S=16,1,2 G=1,2,64,2;4,4,64,1;8,4,16,4" "M=8 S=8,2,1 G=1,2,64,2;4,4,64,1;8,4,16,4" "M=8 S=8,4,1 G=1,2,64,2;4,4,64,1;8,4,16,4" "M=8 S=1,1,4 G=1,2,64,2;4,4,64,1;8,4,16,4" "M=0 S=4,1,2 G=1,2,64,2;4,4,64,1;4,4,32,2" "M=0 S=4,1,2 G=1,2,64,2;4,4,64,1;8,2,32,4"; do
  echo "== $cfg" >> $R/bench.txt
  M=$(echo $cfg | sed 's/.*M=\([^ ]*\).*/\1/'); S=$(echo $cfg | sed 's/.*S=\([^ ]*\).*/\1/'); G=$(echo $cfg | sed 's/.*G=\([^ ]*\).*/\1/')
  FURY_PROFILE_KERNELS=1 FURY_SKINNY_MIN_ROWS=$M FURY_SKINNY_SHAPE=$S FURY_MATMUL_SHAPES="$G" timeout 150 $B 2>&1 | grep -E "fury bench: (2mamba B|profile 2mamba decode)|^\{|rror" | grep -v "$F" >> $R/bench.txt
done
nvidia-smi --query-gpu=clocks.sm,clocks.mem --format=csv >> $R/gpu.txt 2>&1
tar -C $OUT -czf $OUT/r.tgz r && rm -rf $R
