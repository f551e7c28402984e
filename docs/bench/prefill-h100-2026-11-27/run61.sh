#!/bin/bash
# issue 12: the final attn_mma and the attention groups on real tensor cores (kernel tests, the 2Mamba tiny model's
# fixtures, softmax 32k in steps of 4096); an engine restart on this GPU (restart.mjs); prefill with chunks submitted
# ahead (as the server runs a lone prompt); per-op profiles of an 8k prompt's second 4096-row step
set -u
R=$OUT/r; mkdir -p $R
F='deprecated builtin\|^ *\^\|subgroupMatrix\|^warning:\|Compilation log\|warning(s) generated\|^$'
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem --format=csv; date -u; } > $R/gpu.txt 2>&1
timeout 100 node --expose-gc docs/bench/prefill-h100-2026-11-27/restart.mjs dist softmax 2 2>&1 | grep -v "$F" | grep -v "^#\|^1\.\.\|TAP" > $R/restart.txt; echo "rc=${PIPESTATUS[0]}" >> $R/restart.txt
timeout 200 node --test --test-reporter=spec dist/test/kernels/attention.test.js dist/test/kernels/mamba2.test.js dist/test/kernels/webgpu.test.js 2>&1 | grep -v "$F" > $R/tests.txt
timeout 150 node --test --test-reporter=spec --test-name-pattern="fury-2mamba-tiny" dist/test/engine/fixtures.test.js 2>&1 | grep -v "$F" >> $R/tests.txt
B="node dist/cli/fury.js bench --preset small --batch 1 --steps 3"
for cfg in "A=softmax,2mamba-e,2mamba K=4096 C=8192 X=" "A=softmax K=1024 C=8192 X=" "A=softmax,2mamba K=4096 C=32768 X=--prefill-cap=32768" "A=softmax,2mamba-e,2mamba K=4096 C=4096 X=--profile"; do
  echo "== $cfg" >> $R/bench.txt
  eval $cfg
  timeout 200 $B --arch $A --prefill-chunk $K --context $C $X --out $R/bench-${A//,/-}-$K-$C.json 2>&1 | grep -E "fury bench: (2mamba|softmax|profile .* prefill)|rror" | grep -v "$F" >> $R/bench.txt
done
nvidia-smi --query-gpu=clocks.sm,clocks.mem --format=csv >> $R/gpu.txt 2>&1
tar -C $OUT -czf $OUT/r.tgz r && rm -rf $R
