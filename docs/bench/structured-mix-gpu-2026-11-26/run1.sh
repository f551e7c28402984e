#!/bin/bash
# issue 15: free requests beside constrained vs unconstrained others, on WebGPU, before (host-sampled masks, .base)
# and after (device masks) — small preset, random f16 weights; 2Mamba with the state cache off (its snapshots at
# every prompt's end dominate short requests on this model: see the first run)
set -u
R=$OUT/r; mkdir -p $R
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,clocks.max.sm --format=csv > $R/gpu.txt 2>&1
date -u > $R/date.txt
one() { # arch build tag [serve flags]
  local arch=$1 build=$2 tag=$3; shift 3
  node $build/cli/fury.js serve --model m=/tmp/small-$arch --port 8393 --max-batch 16 "$@" > $R/serve-$tag.log 2>&1 &
  local pid=$!
  timeout 170 node docs/bench/structured-mix-gpu-2026-11-26/mix.mjs http://127.0.0.1:8393 8 8 128 1 > $R/mix-$tag.json 2> $R/mix-$tag.err
  kill $pid; wait $pid 2>/dev/null
}
for arch in softmax 2mamba; do
  node dist/cli/fury.js init --arch $arch --preset small --dtype f16 --out /tmp/small-$arch > /dev/null 2>&1
  one $arch dist $arch-after --state-cache-host-bytes 0
  one $arch .base/dist $arch-before --state-cache-host-bytes 0
done
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv >> $R/gpu.txt 2>&1
tar -C $OUT -czf $OUT/r.tgz r && rm -rf $R
