#!/bin/bash
# issue 12: attn_mma with the biases read as vec4 on real tensor cores (kernel tests, the 2Mamba-E tiny model's
# fixtures); prefill after 2 s of untimed passes, 8k in steps of 4096 (all three) and of 1024 (the KV models' server
# default), 32k in steps of 4096
set -u
R=$OUT/r; mkdir -p $R
F='deprecated builtin\|^ *\^\|subgroupMatrix\|^warning:\|Compilation log\|warning(s) generated\|^$'
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem --format=csv; date -u; } > $R/gpu.txt 2>&1
timeout 200 node --test --test-reporter=spec dist/test/kernels/attention.test.js dist/test/kernels/mamba2.test.js 2>&1 | grep -v "$F" > $R/tests.txt
timeout 150 node --test --test-reporter=spec --test-name-pattern="fury-2mamba-e-tiny" dist/test/engine/fixtures.test.js 2>&1 | grep -v "$F" >> $R/tests.txt
B="node dist/cli/fury.js bench --preset small --batch 1 --steps 3"
for cfg in "A=softmax,2mamba-e,2mamba K=4096 C=8192 X=" "A=softmax,2mamba-e K=1024 C=8192 X=" "A=softmax,2mamba-e,2mamba K=4096 C=32768 X=--prefill-cap=32768"; do
  echo "== $cfg" >> $R/bench.txt
  eval $cfg
  timeout 250 $B --arch $A --prefill-chunk $K --context $C $X --out $R/bench-${A//,/-}-$K-$C.json 2>&1 | grep -E "fury bench: (2mamba|softmax|profile .* prefill)|rror" | grep -v "$F" >> $R/bench.txt
done
nvidia-smi --query-gpu=clocks.sm,clocks.mem --format=csv >> $R/gpu.txt 2>&1
tar -C $OUT -czf $OUT/r.tgz r && rm -rf $R
