#!/bin/bash
# issue 12: 2Mamba's segment state update with 128 state rows per workgroup (v2, each k / v row read by half as many
# workgroups) against 64 (v1): m2.mjs at 4096 rows × 4k, kernel tests and the 2Mamba tiny model's fixtures on real
# tensor cores, 2Mamba prefill at 8k and 32k
set -u
R=$OUT/r; mkdir -p $R
F='deprecated builtin\|^ *\^\|subgroupMatrix\|^warning:\|Compilation log\|warning(s) generated\|^$'
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem --format=csv; date -u; } > $R/gpu.txt 2>&1
timeout 200 node --test --test-reporter=spec dist/test/kernels/mamba2.test.js 2>&1 | grep -v "$F" > $R/tests.txt
timeout 150 node --test --test-reporter=spec --test-name-pattern="fury-2mamba-tiny" dist/test/engine/fixtures.test.js 2>&1 | grep -v "$F" >> $R/tests.txt
cp -r dist dist-v1 && cp .gpu/v1/*.js dist-v1/kernels/webgpu/wgsl/
M="node docs/bench/prefill-h100-2026-11-27/m2.mjs"
for D in dist-v1 dist dist-v1 dist; do FURY_PROFILE_KERNELS=1 timeout 60 $M $D 4096 4096 10 2>&1 | grep -E "^\{|rror" >> $R/m2.txt; done
for D in dist-v1 dist; do
  echo "== $D" >> $R/bench.txt
  timeout 200 node $D/cli/fury.js bench --preset small --batch 1 --steps 3 --arch 2mamba --prefill-chunk 4096 --context 8192,32768 --prefill-cap 32768 --out $R/bench-$D.json 2>&1 | grep -E "fury bench: 2mamba B|rror" | grep -v "$F" >> $R/bench.txt
done
nvidia-smi --query-gpu=clocks.sm,clocks.mem --format=csv >> $R/gpu.txt 2>&1
tar -C $OUT -czf $OUT/r.tgz r && rm -rf $R
