#!/bin/bash
# issue 12: the softmax tiny model's fixtures on the H100's tensor cores with the final gemm_mma (8 subgroups, K
# steps of 64): logits against the PyTorch reference, a 300-token prompt, 12 requests decoded together.
set -u
R=$OUT/r; mkdir -p $R
F='deprecated builtin\|^ *\^\|subgroupMatrix\|^warning:\|Compilation log\|warning(s) generated\|^$'
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem --format=csv; date -u; } > $R/gpu.txt 2>&1
timeout 120 node --test --test-reporter=spec --test-name-pattern="fury-softmax-tiny" dist/test/engine/fixtures.test.js 2>&1 | grep -v "$F" > $R/tests.txt
tar -C $OUT -czf $OUT/r.tgz r && rm -rf $R
