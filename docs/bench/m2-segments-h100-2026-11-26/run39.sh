#!/bin/bash
# issue 12: 2Mamba-E's cumulative decays as a workgroup scan: kernel tests and the 2Mamba-E tiny model's fixtures and
# 300-token parity on real tensor cores; 2Mamba-E prefill 8k (profile) and decode batch 1 / 32 at 8k (regression of
# the decode step's scan); final 8k prefill throughput of the three architectures
set -u
R=$OUT/r; mkdir -p $R
F='deprecated builtin\|^ *\^\|subgroupMatrix\|^warning:\|Compilation log\|warning(s) generated\|^$'
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem --format=csv; date -u; } > $R/gpu.txt 2>&1
timeout 200 node --test --test-reporter=spec dist/test/kernels/attention.test.js dist/test/kernels/mamba2.test.js 2>&1 | grep -v "$F" > $R/tests.txt
timeout 150 node --test --test-reporter=spec --test-name-pattern="fury-2mamba-e-tiny" dist/test/engine/fixtures.test.js 2>&1 | grep -v "$F" >> $R/tests.txt
B="node dist/cli/fury.js bench --preset small --prefill-chunk 1024 --context 8192 --prefill-cap 8192"
for cfg in "A=2mamba-e N=1,32 X=--profile" "A=2mamba-e N=1 X=" "A=softmax N=1 X=" "A=2mamba N=1 X=" "A=2mamba N=1 X=--prefill-chunk=4096"; do
  echo "== $cfg" >> $R/bench.txt
  env $cfg FURY_PROFILE_KERNELS=1 bash -c 'timeout 150 "$@" --arch $A --batch $N --steps 20 $X' _ $B 2>&1 | grep -E "fury bench: (2mamba|softmax|profile)|rror" | grep -v "$F" >> $R/bench.txt
done
nvidia-smi --query-gpu=clocks.sm,clocks.mem --format=csv >> $R/gpu.txt 2>&1
tar -C $OUT -czf $OUT/r.tgz r && rm -rf $R
