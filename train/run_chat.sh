#!/bin/bash
# Issue 17 on a CUDA host with 1-4 GPUs: tokenizer and data → fidelity checks → learning-rate sweep → the three
# architectures (and the 2Mamba value-discretisation ablation) with the same shape, data order, optimiser and token
# budget → an instruction phase → fixtures, held-out losses, passkey. Results to $OUT.
#   bash train/run_chat.sh PHASE      (data from train/build_data.py in .corpus/)
# PHASE: base (tokenizer, data, fidelity, sweep, the main runs: ~10 min on 4 H100s), chat (instruction phase and
# exports, on the same machine: /tmp/fury-chat carries over), or smoke (both, a few steps each).
set -euo pipefail
cd "$(dirname "$0")"
export PYTHONUNBUFFERED=1
phase=${1:-smoke}
smoke=0; [ "$phase" = smoke ] && smoke=1
work=/tmp/fury-chat
ngpu=$(nvidia-smi -L | wc -l)
nvidia-smi --query-gpu=name,driver_version,clocks.sm,memory.total --format=csv,noheader | tee $OUT/gpus.txt
t0=$(date +%s)
lr() { python3 -c "import json; print(json.load(open('$work/plan.json'))['lr']['$1'])"; }
if [ "$smoke" = 1 ]; then sweep_steps=6; main_s=20; chat_steps=6; trials=4; lrs="2e-3"; else
  sweep_steps=${SWEEP_STEPS:-400}; main_s=${MAIN_SECONDS:-250}; chat_steps=${CHAT_STEPS:-500}; trials=40; lrs="1e-3 2e-3 4e-3"; fi
if [ "$phase" != chat ]; then
rm -rf $work; mkdir -p $work/sweep $work/main $work/chat
python3 prep.py --corpus ../.corpus --out $work/data $([ "$smoke" = 1 ] && echo --limit-docs 200) 2>&1 | tee $work/prep.log &
prep=$!
CUDA_VISIBLE_DEVICES=0 python3 fidelity.py $OUT/fidelity.json > $work/fidelity.log 2>&1 || echo "FIDELITY FAILED"
wait $prep
echo "prep + fidelity: $(( $(date +%s) - t0 )) s"
# learning-rate sweep: every (arch, lr) for sweep_steps, spread over the GPUs
i=0; pids=()
for arch in 2mamba 2mamba-e softmax; do for lr in $lrs; do
  CUDA_VISIBLE_DEVICES=$(( i % ngpu )) python3 train.py --arch $arch --data $work/data --out $work/sweep/$arch-$lr \
    --steps $sweep_steps --lr $lr --warmup $(( sweep_steps / 8 + 1 )) > $work/sweep/$arch-$lr.log 2>&1 & pids+=($!)
  i=$((i + 1))
done; done
for p in "${pids[@]}"; do wait $p; done
per_gpu=$(python3 -c "print(max(1, $i / $ngpu))")
python3 sweep_pick.py $work/sweep $main_s $per_gpu | tee $work/plan.json
echo "sweep: $(( $(date +%s) - t0 )) s"
steps=$(python3 -c "import json; print(max(10, json.load(open('$work/plan.json'))['steps']))")
# the main runs: one per GPU, the same steps for all; the dt ablation with 2Mamba's rate where a GPU is left
i=0; pids=()
for arch in 2mamba 2mamba-e softmax; do
  CUDA_VISIBLE_DEVICES=$(( i % ngpu )) python3 train.py --arch $arch --data $work/data --out $work/main/fury-$arch-tiny \
    --steps $steps --lr $(lr $arch) --max-seconds $(( main_s + 60 )) > $work/main/$arch.log 2>&1 & pids+=($!)
  i=$((i + 1))
done
CUDA_VISIBLE_DEVICES=$(( 3 % ngpu )) python3 train.py --arch 2mamba --dt --data $work/data --out $work/main/ablation-2mamba-dt \
  --steps $steps --lr $(lr 2mamba) --max-seconds $(( main_s + 60 )) > $work/main/2mamba-dt.log 2>&1 & pids+=($!)
for p in "${pids[@]}"; do wait $p; done
echo "main ($steps steps): $(( $(date +%s) - t0 )) s"
if [ "$phase" = base ]; then
  # kept in $OUT too (bf16 weights, 15 MB each), should the machine not carry over to the chat phase
  for arch in 2mamba 2mamba-e softmax; do cp $work/main/fury-$arch-tiny/model.safetensors $OUT/base-$arch.safetensors; done
  (cd $work && tar -cJf $OUT/base-meta.tar.xz data/tokenizer.json data/tokenizer_config.json plan.json prep.log \
    fidelity.log sweep/*.log main/*.log $(ls main/*/config.json main/*/train_log.json sweep/*/train_log.json))
  ls -la $OUT; exit 0
fi
fi
[ -d $work/main/fury-softmax-tiny ] || { echo "no base models in $work: run the base phase on this machine first"; exit 1; }
mkdir -p $work/chat
# instruction phase: half instruction windows (loss on answers), half corpus, from each main model
i=0; pids=()
for arch in 2mamba 2mamba-e softmax; do
  CUDA_VISIBLE_DEVICES=$(( i % ngpu )) python3 train.py --arch $arch --data $work/data --out $work/chat/fury-$arch-tiny \
    --init $work/main/fury-$arch-tiny --chat-frac 0.5 --steps $chat_steps --lr $(python3 -c "print($(lr $arch) / 4)") \
    --warmup 20 --seed 1 --max-seconds 120 > $work/chat/$arch.log 2>&1 & pids+=($!)
  i=$((i + 1))
done
for p in "${pids[@]}"; do wait $p; done
echo "chat: $(( $(date +%s) - t0 )) s"
# exports: one model per GPU at a time (fixtures, held-out losses, passkey at ½× … 4× the training length)
i=0; pids=()
for m in chat/fury-2mamba-tiny chat/fury-2mamba-e-tiny chat/fury-softmax-tiny main/ablation-2mamba-dt; do
  n=$(basename $m)
  CUDA_VISIBLE_DEVICES=$(( i % ngpu )) python3 export.py --data $work/data --fixtures $work/fixtures \
    --report $work/report-$n.json --passkey-trials $trials $work/$m > $work/export-$n.log 2>&1 & pids+=($!)
  i=$((i + 1))
done
for p in "${pids[@]}"; do wait $p; done
CUDA_VISIBLE_DEVICES=0 python3 export.py --data $work/data --fixtures $work/fixtures-base --report $work/report-base.json \
  --passkey-trials 0 $work/main/fury-*-tiny > $work/export-base.log 2>&1
python3 -c "
import json, glob
r = {}
for f in sorted(glob.glob('$work/report-*.json')):
    if not f.endswith('report-base.json'): r.update(json.load(open(f)))
json.dump(r, open('$work/report.json', 'w'), indent=1)
print(json.dumps(r, indent=1))"
echo "export: $(( $(date +%s) - t0 )) s"
for arch in 2mamba 2mamba-e softmax; do cp $work/chat/fury-$arch-tiny/model.safetensors $OUT/$arch.safetensors; done
(cd $work && tar -cJf $OUT/meta.tar.xz data/tokenizer.json data/tokenizer_config.json fixtures report.json \
  report-base.json plan.json prep.log fidelity.log sweep/*.log main/*.log chat/*.log export-*.log \
  $(ls chat/*/config.json chat/*/train_log.json main/*/train_log.json sweep/*/train_log.json))
ls -la $OUT
