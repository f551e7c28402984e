#!/bin/bash
# issue 12: attn_mma v5 (fewer registers: Q fragments from workgroup memory per tile, S one key fragment at a time, P
# over S's rows, V loaded during its own tile's Q·Kᵀ and softmax and K during the previous tile's P·V) against v3;
# kernel tests and the softmax tiny model's fixtures on real tensor cores; prefill at 8k
set -u
R=$OUT/r; mkdir -p $R
F='deprecated builtin\|^ *\^\|subgroupMatrix\|^warning:\|Compilation log\|warning(s) generated\|^$'
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem --format=csv; date -u; } > $R/gpu.txt 2>&1
timeout 200 node --test --test-reporter=spec dist/test/kernels/attention.test.js dist/test/kernels/mamba2.test.js 2>&1 | grep -v "$F" > $R/tests.txt
timeout 150 node --test --test-reporter=spec --test-name-pattern="fury-softmax-tiny" dist/test/engine/fixtures.test.js 2>&1 | grep -v "$F" >> $R/tests.txt
cp -r dist dist-v3 && cp .gpu/v3/*.js dist-v3/kernels/webgpu/wgsl/
A="node docs/bench/attn-h100-2026-11-26/attn.mjs"
for c in "4096 4096 20 softmax" "4096 4096 20 e"; do
  for D in dist-v3 dist dist-v3 dist; do FURY_PROFILE_KERNELS=1 timeout 60 $A $D $c 2>&1 | grep -E "^\{|rror" >> $R/probe.txt; done
done
ABL=noload FURY_PROFILE_KERNELS=1 timeout 60 $A dist 4096 4096 20 softmax 2>&1 | grep -E "^\{|rror" >> $R/probe.txt
B="node dist/cli/fury.js bench --preset small --batch 1 --steps 3 --context 8192 --prefill-cap 8192"
for cfg in "A=softmax K=4096 X=" "A=2mamba-e K=4096 X=" "A=2mamba K=4096 X=--profile" "A=softmax K=4096 X=--profile"; do
  echo "== $cfg" >> $R/bench.txt
  env $cfg FURY_PROFILE_KERNELS=1 bash -c 'timeout 150 "$@" --arch $A --prefill-chunk $K $X' _ $B 2>&1 | grep -E "fury bench: (2mamba|softmax|profile .* prefill)|rror" | grep -v "$F" >> $R/bench.txt
done
nvidia-smi --query-gpu=clocks.sm,clocks.mem --format=csv >> $R/gpu.txt 2>&1
tar -C $OUT -czf $OUT/r.tgz r && rm -rf $R
