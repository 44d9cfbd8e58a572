#!/usr/bin/env bash
# The GPU speed check (one short script, ~5-8 minutes on one H100/H200), run from the repo root:
#   bash benchmarks/gpu_check.sh [OUT_DIR]
# 1. the training step at 256 px / 9 blocks, batch 1 and 8: eager fp32 (the reference), the seed's
#    call-by-call baseline, then bf16, + channels_last, + torch.compile (images/s, step memory);
# 2. the default `python train.py` (built-in dataset, 800 steps) in fp32 and in bf16 + channels_last,
#    end to end on the GPU: wall time and the quality table.
set -euo pipefail
out=${1:-gpu_check}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu.txt"
python3 benchmarks/train_step.py --device cuda --cases 256/9/1,256/9/8 --reps 10 --warmup 3 \
    --modes optimized,baseline,optimized+bf16,optimized+bf16+cl,optimized+bf16+cl+compile \
    2>&1 | tee "$out/train_step.txt"
for run in "fp32:trainer.precision=32" "bf16-cl:trainer.precision=bf16-mixed trainer.channels_last=true"; do
    name=${run%%:*} knobs=${run#*:}
    echo "== python train.py logger=none $knobs"
    start=$(date +%s)
    # shellcheck disable=SC2086
    python3 train.py logger=none trainer.progress=false $knobs hydra.run.dir="outputs/gpu_check/run-$name" 2>&1 | tail -9
    echo "wall $(($(date +%s) - start)) s"
done 2>&1 | tee "$out/train.txt"
