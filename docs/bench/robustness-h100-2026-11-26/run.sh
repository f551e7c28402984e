#!/bin/bash
# issue 12: Dawn's robustness off (FURY_DAWN_TOGGLES=disable_robustness) against on, FMA and tensor-core kernels
set -u
R=$OUT/r; mkdir -p $R
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,clocks.max.sm --format=csv > $R/gpu.txt 2>&1
run() { # tag toggles matrices args...
  local tag=$1 tog=$2 mat=$3; shift 3
  FURY_DAWN_TOGGLES=$tog FURY_MATRICES=$mat timeout 110 node dist/cli/fury.js bench --preset small "$@" --out $R/$tag.json > $R/$tag.txt 2>&1
}
for rep in 1 2; do
  run fma-robust-$rep "" off --arch 2mamba,softmax --batch 1,32 --context 8192 --steps 20 --prefill-cap 8192
  run fma-norobust-$rep disable_robustness off --arch 2mamba,softmax --batch 1,32 --context 8192 --steps 20 --prefill-cap 8192
done
run tc-robust "" on --arch 2mamba,softmax --batch 1 --context 8192 --steps 5 --prefill-cap 8192
run tc-norobust disable_robustness on --arch 2mamba,softmax --batch 1 --context 8192 --steps 5 --prefill-cap 8192
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv >> $R/gpu.txt 2>&1
tar -C $OUT -czf $OUT/r.tgz r && rm -rf $R
