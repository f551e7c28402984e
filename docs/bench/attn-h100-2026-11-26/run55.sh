#!/bin/bash
# issue 12: attn_mma v2 (O kept in subgroup matrices with a lazily raised stabilizer, K/V loads a tile ahead): kernel
# tests (attention, mamba2) and the softmax tiny model's fixtures on real tensor cores; the probe (one attention op at
# 4096 rows × 8k context) for v1 and v2, and v2 without its P·V / Q·Kᵀ / K-V loads; prefill throughput at 8k
set -u
R=$OUT/r; mkdir -p $R
F='deprecated builtin\|^ *\^\|subgroupMatrix\|^warning:\|Compilation log\|warning(s) generated\|^$'
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem --format=csv; date -u; } > $R/gpu.txt 2>&1
timeout 200 node --test --test-reporter=spec dist/test/kernels/attention.test.js dist/test/kernels/mamba2.test.js 2>&1 | grep -v "$F" > $R/tests.txt
timeout 150 node --test --test-reporter=spec --test-name-pattern="fury-softmax-tiny" dist/test/engine/fixtures.test.js 2>&1 | grep -v "$F" >> $R/tests.txt
cp -r dist dist-v1 && cp .gpu/v1/attention-tc.js dist-v1/kernels/webgpu/wgsl/
A="node docs/bench/attn-h100-2026-11-26/attn.mjs"
for c in "4096 4096 5 softmax" "4096 4096 5 e" "1024 7168 5 softmax"; do
  for D in dist-v1 dist; do FURY_PROFILE_KERNELS=1 timeout 60 $A $D $c 2>&1 | grep -E "^\{|rror" >> $R/probe.txt; done
done
for abl in nopv noscore noload; do ABL=$abl FURY_PROFILE_KERNELS=1 timeout 60 $A dist 4096 4096 5 softmax 2>&1 | grep -E "^\{|rror" >> $R/probe.txt; done
B="node dist/cli/fury.js bench --preset small --batch 1 --steps 3 --context 8192 --prefill-cap 8192"
for cfg in "A=softmax K=1024 X=" "A=softmax K=4096 X=" "A=2mamba-e K=1024 X=" "A=2mamba-e K=4096 X=" "A=2mamba K=4096 X=" "A=softmax K=4096 X=--profile" "A=2mamba K=4096 X=--profile"; do
  echo "== $cfg" >> $R/bench.txt
  env $cfg FURY_PROFILE_KERNELS=1 bash -c 'timeout 150 "$@" --arch $A --prefill-chunk $K $X' _ $B 2>&1 | grep -E "fury bench: (2mamba|softmax|profile .* prefill)|rror" | grep -v "$F" >> $R/bench.txt
done
nvidia-smi --query-gpu=clocks.sm,clocks.mem --format=csv >> $R/gpu.txt 2>&1
tar -C $OUT -czf $OUT/r.tgz r && rm -rf $R
