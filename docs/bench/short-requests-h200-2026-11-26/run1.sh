#!/bin/bash
# why 2Mamba short requests are slow with the state cache on: 8 free requests, cache on vs off, CPU profile of the server
set -u
R=$OUT/r; mkdir -p $R
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv > $R/gpu.txt 2>&1
node dist/cli/fury.js init --arch 2mamba --preset small --dtype f16 --out /tmp/small-2mamba > /dev/null 2>&1
for mode in on off; do
  flags=""; [ $mode = off ] && flags="--state-cache-host-bytes 0"
  node --cpu-prof --cpu-prof-dir=$R/prof-$mode dist/cli/fury.js serve --model m=/tmp/small-2mamba --port 8393 $flags > $R/serve-$mode.log 2>&1 &
  pid=$!
  timeout 150 node docs/bench/structured-mix-gpu-2026-11-26/mix.mjs http://127.0.0.1:8393 8 0 128 3 > $R/mix-$mode.json 2> $R/mix-$mode.err
  kill -INT $pid; wait $pid 2>/dev/null
done
tar -C $OUT -czf $OUT/r.tgz r && rm -rf $R
