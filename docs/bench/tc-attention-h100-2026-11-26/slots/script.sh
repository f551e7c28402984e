#!/bin/bash
# issue 12: attn_mma with slots found once per key: tests, softmax / 2Mamba-E prefill 8k (profile) and 32k
# 300-token parity, softmax / 2Mamba-E prefill (profile), 32k softmax prefill
set -u
R=$OUT/r; mkdir -p $R
F='deprecated builtin\|^ *\^\|subgroupMatrix\|^warning:\|Compilation log\|warning(s) generated\|^$'
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem --format=csv; date -u; } > $R/gpu.txt 2>&1
timeout 200 node --test --test-reporter=spec dist/test/kernels/attention.test.js dist/test/kernels/webgpu.test.js 2>&1 | grep -v "$F" > $R/tests.txt
timeout 120 node --test --test-reporter=spec --test-name-pattern="fury-softmax-tiny" dist/test/engine/fixtures.test.js 2>&1 | grep -v "$F" >> $R/tests.txt
B="node dist/cli/fury.js bench --preset small --batch 1 --steps 5 --prefill-chunk 1024"
for cfg in "M=on A=softmax C=8192 X=--profile" "M=on A=2mamba-e C=8192 X=" "M=on A=softmax C=32768 X=--steps=3" "M=on A=2mamba-e C=32768 X=--steps=3" "M=on A=softmax C=8192 X="; do
  echo "== $cfg" >> $R/bench.txt
  env $cfg FURY_PROFILE_KERNELS=1 bash -c 'FURY_MATRICES=$M timeout 120 "$@" --arch $A --context $C --prefill-cap $C $X' _ $B 2>&1 | grep -E "prefill|rror|B=1 T" | grep -v "$F" >> $R/bench.txt
done
nvidia-smi --query-gpu=clocks.sm,clocks.mem --format=csv >> $R/gpu.txt 2>&1
tar -C $OUT -czf $OUT/r.tgz r && rm -rf $R
