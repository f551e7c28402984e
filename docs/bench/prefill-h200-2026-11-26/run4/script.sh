#!/bin/bash
# issue 12: gemm_tc16 with K steps of 64, x prefetched into registers, weight fragments requested up front; prefill steps of 256 / 1024 rows
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv; date -u; } > $OUT/gpu.txt 2>&1
FURY_MATRICES=on timeout 100 node --test --test-reporter=spec dist/test/kernels/matmul.test.js > $OUT/tests.txt 2>&1
FURY_MATRICES=on timeout 100 node --test --test-reporter=spec --test-name-pattern="fury-2mamba-tiny" dist/test/engine/fixtures.test.js >> $OUT/tests.txt 2>&1
export FURY_PROFILE_KERNELS=1 FURY_M2_CHUNK=128
B="node dist/cli/fury.js bench --preset small --batch 1 --context 8192 --steps 5 --profile"
for cfg in "FURY_MATRICES=off A=2mamba P=256" "FURY_MATRICES=on A=2mamba P=256" "FURY_MATRICES=on A=2mamba P=1024" "FURY_MATRICES=off A=2mamba P=1024" "FURY_MATRICES=on A=softmax P=256"; do
  echo "== $cfg" >> $OUT/bench.txt
  env $cfg bash -c 'timeout 110 "$@" --arch $A --prefill-chunk $P' _ $B 2>&1 | grep -E "prefill|rror" >> $OUT/bench.txt
done
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv >> $OUT/gpu.txt 2>&1
