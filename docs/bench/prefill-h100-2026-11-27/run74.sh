#!/bin/bash
# issue 12: rope and kv_append past 65535 workgroups fixed: the grid test and the softmax tiny model's fixtures on the
# H100; a fixed 10k-token prompt's greedy continuation from a softmax server (small preset, random weights) prefilling in
# steps of 4096 (the new default) and of 1024, with this build and the one before the fix (v3); softmax prefill at 8k
# and 32k
set -u
R=$OUT/r; mkdir -p $R
F='deprecated builtin\|^ *\^\|subgroupMatrix\|^warning:\|Compilation log\|warning(s) generated\|^$'
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem --format=csv; date -u; } > $R/gpu.txt 2>&1
timeout 100 node --test --test-reporter=spec dist/test/kernels/grid.test.js 2>&1 | grep -v "$F" > $R/tests.txt
timeout 150 node --test --test-reporter=spec --test-name-pattern="fury-softmax-tiny" dist/test/engine/fixtures.test.js 2>&1 | grep -v "$F" >> $R/tests.txt
cp -r dist dist-v3 && cp .gpu/v3/*.js dist-v3/kernels/webgpu/wgsl/
node dist/cli/fury.js init --arch softmax --preset small --dtype f16 --out /tmp/small-softmax > /dev/null 2>&1
for cfg in "D=dist N=4096" "D=dist N=1024" "D=dist-v3 N=4096" "D=dist-v3 N=1024"; do
  eval $cfg
  node $D/cli/fury.js serve --model m=/tmp/small-softmax --port 8393 --max-model-len 40000 --prefill-alone $N > /dev/null 2>&1 &
  pid=$!
  echo "$cfg $(timeout 60 node docs/bench/prefill-h100-2026-11-27/same.mjs http://127.0.0.1:8393 10000 16)" >> $R/same.txt
  kill -INT $pid; wait $pid 2>/dev/null
done
timeout 200 node dist/cli/fury.js bench --preset small --batch 1 --steps 3 --arch softmax --prefill-chunk 4096 --context 8192,32768 --prefill-cap 32768 --out $R/bench.json 2>&1 | grep -E "fury bench: softmax B|rror" | grep -v "$F" >> $R/bench.txt
nvidia-smi --query-gpu=clocks.sm,clocks.mem --format=csv >> $R/gpu.txt 2>&1
tar -C $OUT -czf $OUT/r.tgz r && rm -rf $R
