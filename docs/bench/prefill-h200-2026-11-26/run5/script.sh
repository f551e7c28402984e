#!/bin/bash
# issue 12: 2Mamba readout splits 8/16/32 at 1024-row prefill steps; 32k prefill; softmax at 1024-row steps
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv; date -u; } > $OUT/gpu.txt 2>&1
FURY_MATRICES=on timeout 60 node --test --test-reporter=spec dist/test/kernels/mamba2.test.js > $OUT/tests.txt 2>&1
timeout 100 node --test --test-reporter=spec dist/test/kernels/mamba2.test.js dist/test/kernels/webgpu.test.js >> $OUT/tests.txt 2>&1
timeout 60 node --test --test-reporter=spec --test-name-pattern="fury-2mamba-tiny" dist/test/engine/fixtures.test.js >> $OUT/tests.txt 2>&1
export FURY_PROFILE_KERNELS=1
B="node dist/cli/fury.js bench --preset small --batch 1 --steps 5"
for cfg in "FURY_M2_READ_SPLITS=8 A=2mamba C=8192 X=--profile" "FURY_M2_READ_SPLITS=16 A=2mamba C=8192 X=--profile" "FURY_M2_READ_SPLITS=32 A=2mamba C=8192 X=--profile" "FURY_M2_READ_SPLITS=16 A=2mamba C=32768 X=--steps=3" "A=softmax C=8192 X=--profile"; do
  echo "== $cfg" >> $OUT/bench.txt
  env $cfg bash -c 'timeout 110 "$@" --arch $A --context $C --prefill-cap $C --prefill-chunk 1024 $X' _ $B 2>&1 | grep -E "prefill|rror|B=1 T" >> $OUT/bench.txt
done
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv >> $OUT/gpu.txt 2>&1
