#!/bin/bash
# issue 12: end-of-session check: every kernel test on real subgroup matrices, the 2Mamba tiny model's fixtures (12
# requests decoded together: the skinny product in a whole model); 2Mamba decode batch 1 / 8 / 32 at 8k and softmax batch
# 32 × 4096 against the anchors rerun in the same lease
set -u
R=$OUT/r; mkdir -p $R
F='deprecated builtin\|^ *\^\|subgroupMatrix\|^warning:\|Compilation log\|warning(s) generated\|^$'
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem --format=csv; date -u; } > $R/gpu.txt 2>&1
timeout 240 node --test --test-reporter=spec dist/test/kernels/*.test.js 2>&1 | grep -v "$F" > $R/tests.txt
timeout 200 node --test --test-reporter=spec --test-name-pattern="fury-2mamba-tiny" dist/test/engine/fixtures.test.js 2>&1 | grep -v "$F" >> $R/tests.txt
B="node dist/cli/fury.js bench --preset small --steps 30 --prefill-cap 64"
timeout 150 $B --arch 2mamba --batch 1,8,32 --context 8192 2>&1 | grep -E "fury bench: 2mamba B|rror" | grep -v "$F" >> $R/bench.txt
timeout 150 $B --arch softmax --batch 32 --context 4096 2>&1 | grep -E "fury bench: softmax B|rror" | grep -v "$F" >> $R/bench.txt
mkdir -p $R/anchor && timeout 260 python .gpu/anchor_2mamba.py $R/anchor mamba,hf > $R/anchor/log.txt 2>&1
nvidia-smi --query-gpu=clocks.sm,clocks.mem --format=csv >> $R/gpu.txt 2>&1
tar -C $OUT -czf $OUT/r.tgz r && rm -rf $R
