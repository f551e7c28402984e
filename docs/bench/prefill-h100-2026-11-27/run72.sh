#!/bin/bash
# issue 12: attn_mma's lazy stabilizer with TAU = 15 (P ≤ 2^15 in f16; fewer rescales of O) against 11 (v2): the
# attention probe (softmax, 2Mamba-E), m2.mjs (the segment scores), kernel tests and the 2Mamba-E tiny model's fixtures
# on real tensor cores, 2Mamba-E and softmax prefill at 8k
set -u
R=$OUT/r; mkdir -p $R
F='deprecated builtin\|^ *\^\|subgroupMatrix\|^warning:\|Compilation log\|warning(s) generated\|^$'
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem --format=csv; date -u; } > $R/gpu.txt 2>&1
timeout 200 node --test --test-reporter=spec dist/test/kernels/attention.test.js dist/test/kernels/mamba2.test.js 2>&1 | grep -v "$F" > $R/tests.txt
timeout 150 node --test --test-reporter=spec --test-name-pattern="fury-2mamba-e-tiny" dist/test/engine/fixtures.test.js 2>&1 | grep -v "$F" >> $R/tests.txt
cp -r dist dist-v2 && cp .gpu/v2/*.js dist-v2/kernels/webgpu/wgsl/
A="node docs/bench/attn-h100-2026-11-26/attn.mjs"
for c in "4096 4096 20 e" "4096 4096 20 softmax"; do
  for D in dist-v2 dist dist-v2 dist; do FURY_PROFILE_KERNELS=1 timeout 60 $A $D $c 2>&1 | grep -E "^\{|rror" >> $R/probe.txt; done
done
M="node docs/bench/prefill-h100-2026-11-27/m2.mjs"
for D in dist-v2 dist; do FURY_PROFILE_KERNELS=1 timeout 60 $M $D 4096 4096 10 2>&1 | grep -E "^\{|rror" >> $R/m2.txt; done
for D in dist-v2 dist; do
  echo "== $D" >> $R/bench.txt
  timeout 200 node $D/cli/fury.js bench --preset small --batch 1 --steps 3 --arch 2mamba-e,softmax --prefill-chunk 4096 --context 8192 --out $R/bench-$D.json 2>&1 | grep -E "fury bench: (2mamba|softmax)|rror" | grep -v "$F" >> $R/bench.txt
done
nvidia-smi --query-gpu=clocks.sm,clocks.mem --format=csv >> $R/gpu.txt 2>&1
tar -C $OUT -czf $OUT/r.tgz r && rm -rf $R
