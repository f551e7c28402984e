#!/bin/bash
# issue 12: the readbacks' naps (FURY_READ_NAP, default on) against none, alternated: 2Mamba decode at batch 1 and 32
# (8k) with the GC and stall fields, and prefill of an 8k prompt in steps of 4096 (each pass's GC); the softmax tiny
# model's fixtures on the H100; the anchor.
set -u
R=$OUT/r; mkdir -p $R
F='deprecated builtin\|^ *\^\|subgroupMatrix\|^warning:\|Compilation log\|warning(s) generated\|^$\|^Warning: max'
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem --format=csv; date -u; } > $R/gpu.txt 2>&1
B="bench --preset small --arch 2mamba --context 8192 --steps 300 --prefill-cap 512 --prefill-chunk 512 --batch 1,32 --json"
P="bench --preset small --arch 2mamba --context 8192 --steps 3 --prefill-chunk 4096 --batch 1 --json"
run() { echo "== $1" >> $R/bench.txt; shift; timeout 90 "$@" 2>&1 | grep -E "^\{|rror" | grep -v "$F" >> $R/bench.txt; }
for i in 1 2; do
  run "nap 0" env FURY_READ_NAP=0 node dist/cli/fury.js $B
  run "nap 1" node dist/cli/fury.js $B
done
for i in 1 2; do
  run "prefill nap 0" env FURY_READ_NAP=0 node dist/cli/fury.js $P
  run "prefill nap 1" node dist/cli/fury.js $P
done
timeout 90 node --test --test-reporter=spec --test-name-pattern="fury-softmax-tiny" dist/test/engine/fixtures.test.js 2>&1 | grep -v "$F" > $R/tests.txt
mkdir -p $R/anchor && timeout 200 python .gpu/anchor_2mamba.py $R/anchor mamba > $R/anchor/log.txt 2>&1
nvidia-smi --query-gpu=clocks.sm,clocks.mem --format=csv >> $R/gpu.txt 2>&1
tar -C $OUT -czf $OUT/r.tgz r && rm -rf $R
