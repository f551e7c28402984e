#!/bin/bash
# issue 12, the 2Mamba readout on 128 rows a workgroup (1a47ccb) against the build before it (v1, 0d6e37a): mamba2
# kernel tests on real tensor cores and the 2Mamba tiny model's fixtures; prefill of an 8k prompt in steps of 4096,
# alternated, a 32k prompt each, the new build with 2 readout ranges; a fixed 10k prompt's greedy tokens from both.
set -u
R=$OUT/r; mkdir -p $R
F='deprecated builtin\|^ *\^\|subgroupMatrix\|^warning:\|Compilation log\|warning(s) generated\|^$'
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem --format=csv; date -u; } > $R/gpu.txt 2>&1
timeout 120 node --test --test-reporter=spec dist/test/kernels/mamba2.test.js 2>&1 | grep -v "$F" > $R/tests.txt
timeout 60 node --test --test-reporter=spec --test-name-pattern="fury-2mamba-tiny" dist/test/engine/fixtures.test.js 2>&1 | grep -v "$F" >> $R/tests.txt
B="bench --preset small --batch 1 --steps 3 --prefill-chunk 4096 --arch 2mamba"
run() { echo "== $1" >> $R/bench.txt; shift; timeout 70 "$@" 2>&1 | grep -E "fury bench: 2mamba B|rror" | grep -v "$F" | sed 's/snapshot.*//' >> $R/bench.txt; }
for i in 1 2 3; do
  run "v1 8k" node .gpu/dist-v1/cli/fury.js $B --context 8192
  run "new 8k" node dist/cli/fury.js $B --context 8192
done
run "v1 32k" node .gpu/dist-v1/cli/fury.js $B --context 32768 --prefill-cap 32768
run "new 32k" node dist/cli/fury.js $B --context 32768 --prefill-cap 32768
run "new 8k splits 2" env FURY_M2_READ_SPLITS=2 node dist/cli/fury.js $B --context 8192
node dist/cli/fury.js init --arch 2mamba --preset small --dtype f16 --out /tmp/small-2mamba > /dev/null 2>&1
for v in .gpu/dist-v1 dist; do
  node $v/cli/fury.js serve --model m=/tmp/small-2mamba --port 8393 --max-model-len 40000 > /dev/null 2>&1 & pid=$!
  echo "$v $(timeout 60 node docs/bench/prefill-h100-2026-11-27/same.mjs http://127.0.0.1:8393 10000 16)" >> $R/same.txt
  kill -INT $pid; wait $pid 2>/dev/null
done
nvidia-smi --query-gpu=clocks.sm,clocks.mem --format=csv >> $R/gpu.txt 2>&1
tar -C $OUT -czf $OUT/r.tgz r && rm -rf $R
