#!/bin/bash
# issue 12: tiled prefill attention over key ranges of 1024 (FURY_ATTN_TILE_RANGE): attention tests on real tensor
# cores; softmax / 2Mamba-E 8k prefill profiles for ranges of 256 / 1024 / 2048; throughput at 8k and 32k
set -u
R=$OUT/r; mkdir -p $R
F='deprecated builtin\|^ *\^\|subgroupMatrix\|^warning:\|Compilation log\|warning(s) generated\|^$'
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem --format=csv; date -u; } > $R/gpu.txt 2>&1
timeout 200 node --test --test-reporter=spec dist/test/kernels/attention.test.js 2>&1 | grep -v "$F" > $R/tests.txt
timeout 150 node --test --test-reporter=spec --test-name-pattern="fury-softmax-tiny" dist/test/engine/fixtures.test.js 2>&1 | grep -v "$F" >> $R/tests.txt
B="node dist/cli/fury.js bench --preset small --batch 1 --prefill-chunk 1024 --steps 3"
for cfg in "A=softmax K=256 C=8192 X=--profile" "A=softmax K=1024 C=8192 X=--profile" "A=softmax K=2048 C=8192 X=--profile" "A=2mamba-e K=1024 C=8192 X=--profile" "A=softmax K=1024 C=8192 X=" "A=2mamba-e K=1024 C=8192 X=" "A=softmax K=1024 C=32768 X=" "A=softmax K=256 C=32768 X="; do
  echo "== $cfg" >> $R/bench.txt
  env $cfg FURY_PROFILE_KERNELS=1 bash -c 'FURY_ATTN_TILE_RANGE=$K timeout 150 "$@" --arch $A --context $C --prefill-cap $C $X' _ $B 2>&1 | grep -E "fury bench: (2mamba|softmax|profile .* prefill)|rror" | grep -v "$F" >> $R/bench.txt
done
nvidia-smi --query-gpu=clocks.sm,clocks.mem --format=csv >> $R/gpu.txt 2>&1
tar -C $OUT -czf $OUT/r.tgz r && rm -rf $R
