#!/usr/bin/env bash
# The GPU speed check of issue 16, one script, about 6-8 minutes on one H100/H200, from the repo root:
#   bash benchmarks/gpu_check.sh [OUT_DIR]          # default: $OUT, else gpu_check/
# 1. the GPU tests: the step makes no host synchronisation (set_sync_debug_mode), a whole-step
#    CUDA graph replays the eager step's losses and weights;
# 2. the step at 256 px / 9 blocks, batch 1 and 8: the seed's execution (baseline, the speed-ups'
#    reference), eager fp32 (replay buffers on the device: no sync), the whole step as a CUDA graph, bf16 +
#    channels_last, and their combination (images/s, speed-up, MFU against the same run's bf16 and
#    TF32 matmul peaks, step memory);
# 3. batch 8 only: strict fp32 (TF32 off), torch.compile, compile + CUDA graph (compiling is the
#    slow part: minutes from a cold cache);
# 4. the default `python train.py` end to end (data generation, start-up, 800 steps, evaluation):
#    wall time and the quality table; once per knob set, including the faster settings when the
#    config has them (trainer.cuda_graphs, trainer.precision=auto).
# Every part has its own time limit, so one that hangs costs its limit, not the rest; each part's
# output is in OUT_DIR/<part>.txt and a summary of wall times in OUT_DIR/times.txt.
set -uo pipefail
out=${1:-${OUT:-gpu_check}}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
start_all=$(date +%s)

part() {  # part NAME LIMIT_S COMMAND...: run with a time limit, tee to OUT/NAME.txt, log the time
    local name=$1 limit=$2
    shift 2
    local t0
    t0=$(date +%s)
    echo "== $name: $*" | tee "$out/$name.txt"
    timeout "$limit" "$@" 2>&1 | tee -a "$out/$name.txt"
    local rc=${PIPESTATUS[0]}
    echo "$name: rc=$rc, $(($(date +%s) - t0)) s (limit $limit s)" | tee -a "$out/times.txt"
}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu.txt"
python3 -c "import torch; print('torch', torch.__version__)" | tee -a "$out/gpu.txt"

part tests 120 python3 -m pytest -q -rs tests/test_sync_free_step.py tests/test_cuda_graphs.py

part step 180 python3 benchmarks/train_step.py --device cuda --cases 256/9/1,256/9/8 \
    --reps 10 --warmup 3 \
    --modes baseline,optimized,optimized+graphs,optimized+bf16+cl,optimized+bf16+cl+graphs

part step_compile 240 python3 benchmarks/train_step.py --device cuda --cases 256/9/8 \
    --reps 10 --warmup 3 \
    --modes baseline,optimized+strict,optimized+bf16+cl+compile,optimized+bf16+cl+compile+graphs

# The default run, then the same with the faster settings (those the config knows).
runs=("default:")
runs+=("bf16-cl:trainer.precision=bf16-mixed trainer.channels_last=true")
if python3 train.py --cfg job trainer.cuda_graphs=true trainer.precision=auto trainer.device_cache=true >/dev/null 2>&1; then
    runs+=("fast:trainer.cuda_graphs=true trainer.precision=auto trainer.device_cache=true")
fi
for run in "${runs[@]}"; do
    name=${run%%:*} knobs=${run#*:}
    # shellcheck disable=SC2086
    part "train-$name" 150 python3 train.py logger=none trainer.progress=false $knobs \
        hydra.run.dir="outputs/gpu_check/run-$name"  # checkpoints stay out of OUT_DIR
done

echo "total $(($(date +%s) - start_all)) s" | tee -a "$out/times.txt"
