#!/bin/bash
# issue 12: every kernel test and the softmax tiny model's fixtures on real tensor cores (final attn_mma); what a
# column-major fragment load costs (2Mamba's segment readout's left operand, attn_mma's K, gemm_mma's weights: the
# same loads row-major, wrong values); server TTFT of lone softmax / 2Mamba-E prompts with the new default
# --prefill-alone (4096 on tensor cores), 1 s between requests
set -u
R=$OUT/r; mkdir -p $R
F='deprecated builtin\|^ *\^\|subgroupMatrix\|^warning:\|Compilation log\|warning(s) generated\|^$'
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem --format=csv; date -u; } > $R/gpu.txt 2>&1
timeout 200 node --test --test-reporter=spec dist/test/kernels/*.test.js 2>&1 | grep -v "$F" > $R/tests.txt
timeout 150 node --test --test-reporter=spec --test-name-pattern="fury-softmax-tiny" dist/test/engine/fixtures.test.js 2>&1 | grep -v "$F" >> $R/tests.txt
M="node docs/bench/prefill-h100-2026-11-27/m2.mjs"
for abl in "" read:rowa "" read:rowa; do ABL=$abl FURY_PROFILE_KERNELS=1 timeout 60 $M dist 4096 4096 10 2>&1 | grep -E "^\{|rror" >> $R/m2.txt; done
A="node docs/bench/attn-h100-2026-11-26/attn.mjs"
for abl in "" krow "" krow; do ABL=$abl FURY_PROFILE_KERNELS=1 timeout 60 $A dist 4096 4096 20 softmax 2>&1 | grep -E "^\{|rror" >> $R/probe.txt; done
B="bench --preset small --batch 1 --steps 3 --arch 2mamba --prefill-chunk 4096 --context 4096 --profile"
FURY_PROFILE_KERNELS=1 timeout 120 node dist/cli/fury.js $B --out $R/prof-base.json 2>&1 | grep -E "profile .* prefill|rror" | grep -v "$F" >> $R/gemm.txt
ABL_KERNEL=gemm_mma ABL_RE='col_major>' ABL_TO='row_major>' FURY_PROFILE_KERNELS=1 timeout 120 node docs/bench/prefill-h100-2026-11-27/abl.mjs dist $B --out $R/prof-rowb.json 2>&1 | grep -E "profile .* prefill|rror" | grep -v "$F" >> $R/gemm.txt
for a in softmax 2mamba-e; do
  node dist/cli/fury.js init --arch $a --preset small --dtype f16 --out /tmp/small-$a > /dev/null 2>&1
  node dist/cli/fury.js serve --model m=/tmp/small-$a --port 8393 --max-model-len 40000 > $R/serve-$a.log 2>&1 &
  pid=$!
  timeout 80 node docs/bench/ttft-h100-2026-11-26/ttft.mjs http://127.0.0.1:8393 32768 5 1000 2> $R/ttft-32k-$a.txt > /dev/null
  timeout 40 node docs/bench/ttft-h100-2026-11-26/ttft.mjs http://127.0.0.1:8393 8192 5 1000 2> $R/ttft-8k-$a.txt > /dev/null
  kill -INT $pid; wait $pid 2>/dev/null
  grep -v "$F" $R/serve-$a.log | grep -v '"request finished"\|reqId' | head -12 > $R/serve-$a.txt; rm $R/serve-$a.log
done
nvidia-smi --query-gpu=clocks.sm,clocks.mem --format=csv >> $R/gpu.txt 2>&1
tar -C $OUT -czf $OUT/r.tgz r && rm -rf $R
