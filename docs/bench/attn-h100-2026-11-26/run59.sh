#!/bin/bash
# issue 12: attn_mma v6 (v3 with each key's cache slot found once, two tiles ahead, in workgroup memory) against v3 and
# v3 without page-table walks; kernel tests and the softmax tiny model's fixtures on real tensor cores; prefill at 8k
set -u
R=$OUT/r; mkdir -p $R
F='deprecated builtin\|^ *\^\|subgroupMatrix\|^warning:\|Compilation log\|warning(s) generated\|^$'
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem --format=csv; date -u; } > $R/gpu.txt 2>&1
timeout 200 node --test --test-reporter=spec dist/test/kernels/attention.test.js dist/test/kernels/mamba2.test.js 2>&1 | grep -v "$F" > $R/tests.txt
timeout 150 node --test --test-reporter=spec --test-name-pattern="fury-softmax-tiny" dist/test/engine/fixtures.test.js 2>&1 | grep -v "$F" >> $R/tests.txt
cp -r dist dist-v3 && cp .gpu/v3/*.js dist-v3/kernels/webgpu/wgsl/
A="node docs/bench/attn-h100-2026-11-26/attn.mjs"
for D in "ABL= dist-v3" "ABL= dist" "ABL=nopage dist-v3" "ABL= dist-v3" "ABL= dist"; do env ${D% *} FURY_PROFILE_KERNELS=1 timeout 60 $A ${D#* } 4096 4096 20 softmax 2>&1 | grep -E "^\{|rror" >> $R/probe.txt; done
for D in dist-v3 dist; do FURY_PROFILE_KERNELS=1 timeout 60 $A $D 4096 4096 20 e 2>&1 | grep -E "^\{|rror" >> $R/probe.txt; done
B="node dist/cli/fury.js bench --preset small --batch 1 --steps 3 --context 8192 --prefill-cap 8192"
for cfg in "A=softmax K=4096" "A=2mamba-e K=4096"; do
  echo "== $cfg" >> $R/bench.txt
  env $cfg bash -c 'timeout 150 "$@" --arch $A --prefill-chunk $K' _ $B 2>&1 | grep -E "fury bench: (2mamba|softmax)|rror" | grep -v "$F" >> $R/bench.txt
done
nvidia-smi --query-gpu=clocks.sm,clocks.mem --format=csv >> $R/gpu.txt 2>&1
tar -C $OUT -czf $OUT/r.tgz r && rm -rf $R
