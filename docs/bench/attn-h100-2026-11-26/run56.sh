#!/bin/bash
# issue 12: attn_mma v1 / v2 / v3 (v3: S rows as vec4, lanes l and l + 16 share a row) timed with 3 s of warm-up, v3
# without each of its parts; attention + mamba2 kernel tests on real tensor cores (v3); softmax / 2Mamba-E prefill
set -u
R=$OUT/r; mkdir -p $R
F='deprecated builtin\|^ *\^\|subgroupMatrix\|^warning:\|Compilation log\|warning(s) generated\|^$'
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem --format=csv; date -u; } > $R/gpu.txt 2>&1
timeout 200 node --test --test-reporter=spec dist/test/kernels/attention.test.js dist/test/kernels/mamba2.test.js 2>&1 | grep -v "$F" > $R/tests.txt
for v in v1 v2; do cp -r dist dist-$v && cp .gpu/$v/attention-tc.js dist-$v/kernels/webgpu/wgsl/; done
A="node docs/bench/attn-h100-2026-11-26/attn.mjs"
for c in "4096 4096 20 softmax" "4096 4096 20 e"; do
  for D in dist-v1 dist-v2 dist dist-v1 dist-v2 dist; do FURY_PROFILE_KERNELS=1 timeout 60 $A $D $c 2>&1 | grep -E "^\{|rror" >> $R/probe.txt; done
done
for abl in nopv noscore noload nosoft noexp; do ABL=$abl FURY_PROFILE_KERNELS=1 timeout 60 $A dist 4096 4096 20 softmax 2>&1 | grep -E "^\{|rror" >> $R/probe.txt; done
B="node dist/cli/fury.js bench --preset small --batch 1 --steps 3 --context 8192 --prefill-cap 8192"
for cfg in "A=softmax K=4096 X=" "A=2mamba-e K=4096 X=" "A=2mamba K=4096 X=--profile" "A=softmax K=4096 X=--profile"; do
  echo "== $cfg" >> $R/bench.txt
  env $cfg FURY_PROFILE_KERNELS=1 bash -c 'timeout 150 "$@" --arch $A --prefill-chunk $K $X' _ $B 2>&1 | grep -E "fury bench: (2mamba|softmax|profile .* prefill)|rror" | grep -v "$F" >> $R/bench.txt
done
nvidia-smi --query-gpu=clocks.sm,clocks.mem --format=csv >> $R/gpu.txt 2>&1
tar -C $OUT -czf $OUT/r.tgz r && rm -rf $R
