#!/bin/bash
# issue 12: the paced ticks in a real server. A random small 2Mamba checkpoint (fury init, f16), served by
# `fury loadtest --spawn`: 1024-token prompts, 32 concurrent streams, 96 requests of 128 tokens; FURY_DAWN_TICK_US
# 25 (default) against 0, alternated, twice. ITL and TPOT percentiles, throughput.
set -u
R=$OUT/r; mkdir -p $R
F='deprecated builtin\|^ *\^\|subgroupMatrix\|^warning:\|Compilation log\|warning(s) generated\|^$\|^Warning: max'
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem --format=csv; date -u; } > $R/gpu.txt 2>&1
node dist/cli/fury.js init --arch 2mamba --preset small --dtype f16 --out /tmp/small2m > $R/init.txt 2>&1
for i in 1 2; do
  for t in 25 0; do
    FURY_DAWN_TICK_US=$t timeout 100 node dist/cli/fury.js loadtest --spawn --model /tmp/small2m --contexts 1024 \
      --concurrency 32 --requests 96 --max-tokens 128 --out $R/lt-$t-$i 2>&1 | grep -v "$F" | tr '\r' '\n' | tail -3 > $R/lt-$t-$i.log
  done
done
nvidia-smi --query-gpu=clocks.sm,clocks.mem --format=csv >> $R/gpu.txt 2>&1
tar -C $OUT -czf $OUT/r.tgz r && rm -rf $R
