#!/bin/bash
# issue 12: gemm_mma with double-buffered tiles (one barrier a K step; v0: one buffer, two barriers); every kernel test
# on real tensor cores, the 2Mamba tiny model's fixtures; 8k prefill of the three architectures with v0 and the new
# kernel, 2Mamba also in segments of 512
set -u
R=$OUT/r; mkdir -p $R
F='deprecated builtin\|^ *\^\|subgroupMatrix\|^warning:\|Compilation log\|warning(s) generated\|^$'
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem --format=csv; date -u; } > $R/gpu.txt 2>&1
timeout 200 node --test --test-reporter=spec dist/test/kernels/*.test.js 2>&1 | grep -v "$F" > $R/tests.txt
timeout 100 node --test --test-reporter=spec --test-name-pattern="fury-2mamba-tiny" dist/test/engine/fixtures.test.js 2>&1 | grep -v "$F" >> $R/tests.txt
cp -r dist dist-v0 && cp .gpu/v0/*.js dist-v0/kernels/webgpu/wgsl/
B="bench --preset small --batch 1 --steps 3 --prefill-chunk 4096 --context 8192"
for D in dist-v0 dist dist-v0 dist; do
  for a in softmax 2mamba-e 2mamba; do
    echo "== $D $a" >> $R/bench.txt
    timeout 60 node $D/cli/fury.js $B --arch $a --out $R/bench-$a-$D.json 2>&1 | grep -E "fury bench: .* B|rror" | grep -v "$F" | sed 's/snapshot.*//' >> $R/bench.txt
  done
done
echo "== dist 2mamba seg 512" >> $R/bench.txt
FURY_M2_SEGMENT=512 timeout 60 node dist/cli/fury.js $B --arch 2mamba --out $R/bench-2mamba-512.json 2>&1 | grep -E "fury bench: .* B|rror" | grep -v "$F" | sed 's/snapshot.*//' >> $R/bench.txt
nvidia-smi --query-gpu=clocks.sm,clocks.mem --format=csv >> $R/gpu.txt 2>&1
tar -C $OUT -czf $OUT/r.tgz r && rm -rf $R
