#!/bin/bash
# issue 15 after the grammar threads: free requests beside constrained vs unconstrained others (8 + 8, batch 16),
# WebGPU, small preset, random f16 weights, 2Mamba state cache off
set -u
R=$OUT/r; mkdir -p $R
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,clocks.max.sm --format=csv > $R/gpu.txt 2>&1
date -u > $R/date.txt; nproc > $R/nproc.txt
for arch in 2mamba softmax; do
  node dist/cli/fury.js init --arch $arch --preset small --dtype f16 --out /tmp/small-$arch > /dev/null 2>&1
  node dist/cli/fury.js serve --model m=/tmp/small-$arch --port 8393 --max-batch 16 --state-cache-host-bytes 0 > $R/serve-$arch.log 2>&1 &
  pid=$!
  timeout 200 node docs/bench/structured-mix-gpu-2026-11-26/mix.mjs http://127.0.0.1:8393 8 8 128 3 > $R/mix-$arch.json 2> $R/mix-$arch.err
  kill $pid; wait $pid 2>/dev/null
done
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv >> $R/gpu.txt 2>&1
tar -C $OUT -czf $OUT/r.tgz r && rm -rf $R
