#!/bin/bash
# issue 12: the rebuilt tensor-core GEMM (gemm_mma) on the GPU: kernel + parity tests (defaults: tensor cores on,
# robustness off); prefill with tensor cores on vs off; 32k 2Mamba prefill; decode at batch 1 / 32; anchors
set -u
R=$OUT/r; mkdir -p $R
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem --format=csv; date -u; } > $R/gpu.txt 2>&1
timeout 200 node --test --test-reporter=spec dist/test/kernels/*.test.js > $R/tests.txt 2>&1
timeout 100 node --test --test-reporter=spec --test-name-pattern="fury-2mamba-tiny" dist/test/engine/fixtures.test.js >> $R/tests.txt 2>&1
echo rc=$? >> $R/tests.txt
B="node dist/cli/fury.js bench --preset small --batch 1 --steps 5 --prefill-chunk 1024"
for cfg in "M=off A=2mamba C=8192 X=" "M=on A=2mamba C=8192 X=--profile" "M=off A=softmax C=8192 X=" "M=on A=softmax C=8192 X=--profile" "M=on A=2mamba-e C=8192 X=" "M=on A=2mamba C=32768 X=--steps=3" "M=off A=2mamba C=8192 X=" "M=on A=2mamba C=8192 X="; do
  echo "== $cfg" >> $R/bench.txt
  env $cfg FURY_PROFILE_KERNELS=1 bash -c 'FURY_MATRICES=$M timeout 120 "$@" --arch $A --context $C --prefill-cap $C $X' _ $B 2>&1 | grep -E "prefill|rror|B=1 T|gemm|mamba2|attention|m2_|matmul" >> $R/bench.txt
done
echo "== decode 2mamba/softmax batch 1,32 context 8192 (defaults)" >> $R/bench.txt
timeout 150 node dist/cli/fury.js bench --preset small --arch 2mamba,softmax --batch 1,32 --context 8192 --steps 30 --json --out $R/decode.json > $R/decode.txt 2>&1
mkdir -p $R/anchor && timeout 240 python .gpu/anchor_2mamba.py $R/anchor mamba,hf > $R/anchor/log.txt 2>&1
nvidia-smi --query-gpu=clocks.sm,clocks.mem --format=csv >> $R/gpu.txt 2>&1
tar -C $OUT -czf $OUT/r.tgz r && rm -rf $R
