#!/bin/bash
# issue 12: what 2Mamba's segment readout and update spend (m2.mjs, parts removed from their WGSL); attn_mma with the
# forget-gate bias read as vec4 (v1) against before (v0), and 2Mamba-E's logits without the bias (what it costs)
set -u
R=$OUT/r; mkdir -p $R
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem --format=csv; date -u; } > $R/gpu.txt 2>&1
M="node docs/bench/prefill-h100-2026-11-27/m2.mjs"
for abl in "" read:nophi read:nos read:nomma upd:nophi upd:noload upd:nomma ""; do
  ABL=$abl FURY_PROFILE_KERNELS=1 timeout 60 $M dist 4096 4096 10 2>&1 | grep -E "^\{|rror" >> $R/m2.txt
done
cp -r dist dist-v0 && cp .gpu/v0/attention-tc.js dist-v0/kernels/webgpu/wgsl/
A="node docs/bench/attn-h100-2026-11-26/attn.mjs"
for c in "4096 4096 20 e" "4096 4096 20 softmax"; do
  for D in dist-v0 dist dist-v0 dist; do FURY_PROFILE_KERNELS=1 timeout 60 $A $D $c 2>&1 | grep -E "^\{|rror" >> $R/probe.txt; done
done
ABL=noc FURY_PROFILE_KERNELS=1 timeout 60 $A dist-v0 4096 4096 20 e 2>&1 | grep -E "^\{|rror" >> $R/probe.txt
nvidia-smi --query-gpu=clocks.sm,clocks.mem --format=csv >> $R/gpu.txt 2>&1
tar -C $OUT -czf $OUT/r.tgz r && rm -rf $R
