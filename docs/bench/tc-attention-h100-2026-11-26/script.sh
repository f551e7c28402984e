#!/bin/bash
# issue 12: attn_mma and gemm_mma on the GPU: kernel tests (real subgroup matrices), the softmax model's 300-token
# greedy parity; softmax / 2Mamba-E / 2Mamba prefill with tensor cores on vs off; softmax decode B=32 at 4096; HF anchor
set -u
R=$OUT/r; mkdir -p $R
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem --format=csv; date -u; } > $R/gpu.txt 2>&1
timeout 200 node --test --test-reporter=spec dist/test/kernels/*.test.js > $R/tests.txt 2>&1
echo rc=$? >> $R/tests.txt
timeout 120 node --test --test-reporter=spec --test-name-pattern="fury-softmax-tiny" dist/test/engine/fixtures.test.js >> $R/tests.txt 2>&1
echo rc=$? >> $R/tests.txt
B="node dist/cli/fury.js bench --preset small --batch 1 --steps 5 --prefill-chunk 1024"
for cfg in "M=off A=softmax C=8192 X=" "M=on A=softmax C=8192 X=--profile" "M=off A=2mamba-e C=8192 X=" "M=on A=2mamba-e C=8192 X=" "M=on A=softmax C=32768 X=--steps=3" "M=on A=2mamba C=8192 X=" "M=off A=softmax C=8192 X=" "M=on A=softmax C=8192 X="; do
  echo "== $cfg" >> $R/bench.txt
  env $cfg FURY_PROFILE_KERNELS=1 bash -c 'FURY_MATRICES=$M timeout 120 "$@" --arch $A --context $C --prefill-cap $C $X' _ $B 2>&1 | grep -E "prefill|rror|B=1 T|gemm|attn|m2_|matmul" | grep -v "^ *\^\|subgroupMatrix" >> $R/bench.txt
done
timeout 150 node dist/cli/fury.js bench --preset small --arch softmax,2mamba-e --batch 32 --context 4096 --steps 30 --json --out $R/decode4k.json > $R/decode4k.txt 2>&1
mkdir -p $R/anchor && timeout 200 python .gpu/anchor_2mamba.py $R/anchor hf > $R/anchor/log.txt 2>&1
nvidia-smi --query-gpu=clocks.sm,clocks.mem --format=csv >> $R/gpu.txt 2>&1
tar -C $OUT -czf $OUT/r.tgz r && rm -rf $R
