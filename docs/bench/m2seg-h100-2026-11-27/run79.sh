#!/bin/bash
# issue 12: attn_mma walks a range's key tiles from the diagonal back (v0: oldest first); kernel tests on real tensor
# cores, the 2Mamba-E tiny model's fixtures; prefill at 8k (2Mamba also 32k) with v0 and the new walk
set -u
R=$OUT/r; mkdir -p $R
F='deprecated builtin\|^ *\^\|subgroupMatrix\|^warning:\|Compilation log\|warning(s) generated\|^$'
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem --format=csv; date -u; } > $R/gpu.txt 2>&1
timeout 150 node --test --test-reporter=spec dist/test/kernels/attention*.test.js dist/test/kernels/mamba2.test.js 2>&1 | grep -v "$F" > $R/tests.txt
timeout 100 node --test --test-reporter=spec --test-name-pattern="fury-2mamba-e-tiny" dist/test/engine/fixtures.test.js 2>&1 | grep -v "$F" >> $R/tests.txt
cp -r dist dist-v0 && cp .gpu/v0/*.js dist-v0/kernels/webgpu/wgsl/
B="bench --preset small --batch 1 --steps 3 --prefill-chunk 4096"
for D in dist-v0 dist; do
  for a in 2mamba-e softmax; do
    echo "== $D $a" >> $R/bench.txt
    timeout 60 node $D/cli/fury.js $B --arch $a --context 8192 --out $R/bench-$a-$D.json 2>&1 | grep -E "fury bench: .* B|rror" | grep -v "$F" | sed 's/snapshot.*//' >> $R/bench.txt
  done
  echo "== $D 2mamba" >> $R/bench.txt
  timeout 90 node $D/cli/fury.js $B --arch 2mamba --context 8192,32768 --prefill-cap 32768 --out $R/bench-2mamba-$D.json 2>&1 | grep -E "fury bench: .* B|rror" | grep -v "$F" | sed 's/snapshot.*//' >> $R/bench.txt
done
echo "== dist 2mamba-e again" >> $R/bench.txt
timeout 60 node dist/cli/fury.js $B --arch 2mamba-e --context 8192 --out $R/bench-2mamba-e-again.json 2>&1 | grep -E "fury bench: .* B|rror" | grep -v "$F" | sed 's/snapshot.*//' >> $R/bench.txt
echo "== dist 2mamba seg 512" >> $R/bench.txt
FURY_M2_SEGMENT=512 timeout 90 node dist/cli/fury.js $B --arch 2mamba --context 8192,32768 --prefill-cap 32768 --out $R/bench-2mamba-512.json 2>&1 | grep -E "fury bench: .* B|rror" | grep -v "$F" | sed 's/snapshot.*//' >> $R/bench.txt
nvidia-smi --query-gpu=clocks.sm,clocks.mem --format=csv >> $R/gpu.txt 2>&1
tar -C $OUT -czf $OUT/r.tgz r && rm -rf $R
