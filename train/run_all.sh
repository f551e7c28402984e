#!/bin/bash
# On the CUDA host: tokenizer → data → reference tests → the three trainings in parallel → fixtures and evals.
#   bash train/run_all.sh STEPS MAX_SECONDS PASSKEY_TRIALS      (corpus in .corpus/, results to $OUT)
set -euo pipefail
steps=${1:-2000}; max_s=${2:-420}; trials=${3:-40}
cd "$(dirname "$0")"
export PYTHONUNBUFFERED=1
work=/tmp/fury-train; rm -rf $work; mkdir -p $work/models
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,memory.total --format=csv,noheader
python3 prep.py --corpus ../.corpus --out $work/data
python3 test_reference.py
for arch in 2mamba 2mamba-e softmax; do
  python3 train.py --arch $arch --data $work/data --out $work/models/fury-$arch-tiny --steps $steps --max-seconds $max_s \
    > $work/train-$arch.log 2>&1 &
done
wait
tail -n 3 $work/train-*.log
python3 export.py --data $work/data --fixtures $work/fixtures --report $work/report.json --passkey-trials $trials $work/models/*
for arch in 2mamba 2mamba-e softmax; do cp $work/models/fury-$arch-tiny/model.safetensors $OUT/$arch.safetensors; done
tar -C $work -cJf $OUT/meta.tar.xz data/tokenizer.json data/tokenizer_config.json fixtures report.json train-2mamba.log \
  train-2mamba-e.log train-softmax.log $(cd $work && ls models/*/config.json models/*/train_log.json)
ls -la $OUT
