#!/bin/bash
# issue 12: 2Mamba tensor-core readout / update with loads a tile ahead: kernel tests; 8k prefill profiles (readout
# splits 2 / 4); throughput at 8k (1024- and 4096-row steps) and 32k; server TTFT of a 32k prompt alone (default
# --prefill-alone 1024, and 4096)
set -u
R=$OUT/r; mkdir -p $R
F='deprecated builtin\|^ *\^\|subgroupMatrix\|^warning:\|Compilation log\|warning(s) generated\|^$'
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem --format=csv; date -u; } > $R/gpu.txt 2>&1
timeout 200 node --test --test-reporter=spec dist/test/kernels/mamba2.test.js 2>&1 | grep -v "$F" > $R/tests.txt
B="node dist/cli/fury.js bench --preset small --arch 2mamba --batch 1"
for cfg in "P=2 K=1024 C=8192 X=--profile" "P=4 K=1024 C=8192 X=--profile" "P=2 K=1024 C=8192 X=" "P=2 K=1024 C=8192 X=" "P=2 K=4096 C=8192 X=" "P=2 K=1024 C=32768 X=" "P=2 K=4096 C=32768 X="; do
  echo "== $cfg" >> $R/bench.txt
  env $cfg FURY_PROFILE_KERNELS=1 bash -c 'FURY_M2_READ_SPLITS=$P timeout 120 "$@" --steps 3 --prefill-chunk $K --context $C --prefill-cap $C $X --json --out $R/b-$P-$K-$C-$RANDOM.json' _ $B 2>&1 | grep -E "fury bench: (2mamba B|profile 2mamba prefill)|rror" | grep -v "$F" >> $R/bench.txt
done
node dist/cli/fury.js init --arch 2mamba --preset small --dtype f16 --out /tmp/small-2mamba > /dev/null 2>&1
for pa in 1024 4096; do
  node dist/cli/fury.js serve --model m=/tmp/small-2mamba --port 8393 --prefill-alone $pa > $R/serve.log 2>&1 &
  pid=$!
  timeout 150 node docs/bench/ttft-h100-2026-11-26/ttft.mjs http://127.0.0.1:8393 32768 5 2> $R/ttft-32k-$pa.txt > /dev/null
  kill -INT $pid; wait $pid 2>/dev/null
  grep -v "$F" $R/serve.log | tail -3 > $R/serve-$pa.txt; rm $R/serve.log
done
tar -C $OUT -czf $OUT/r.tgz r && rm -rf $R
