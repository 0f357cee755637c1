#!/usr/bin/env bash
# The GPU checks of issues 10 and 12 in one call, on a machine with an NVIDIA GPU and no network:
#
#   pip install -e '.[bench]'            # transformers and peft, the peers
#   bash benchmarks/gpu_checks.sh [OUT]  # OUT: where the logs and summary.txt go (default $OUT or /tmp/gpu-checks)
#
# 1. training step, GPT-2 small's shape (12 x 768, T=1024, vocab 50304, batch 8), bf16 autocast on both
#    sides, ours vs transformers' GPT2LMHeadModel: tokens/s and MFU against an 8192^3 bf16 matmul timed
#    on the GPU; then the same with torch.compile on both sides
# 2. the engine itself (`llm-train train`) on that shape: one process, then DDP through torchrun with
#    NCCL (one GPU), then fp16 with the grad scaler; each run's start event and last step event (tokens/s,
#    mfu against the GPU's nominal peak) are printed
# 3. generation at batch 1 (GPT-2 small's shape, bf16, 256 new tokens) vs transformers' generate, and of an
#    imported 135M Llama-shaped model (fp32 and bf16, 128 new tokens) vs transformers on the same weights
# 4. LoRA fine-tuning of a 135M Llama-shaped model vs transformers + peft (bf16)
# Each step has a time limit (STEP_TIMEOUT, default 240 s); one failing step does not stop the others.
# SMOKE=1 runs the same steps on the CPU at a tiny shape (fp32 for the fp16 step): a check of the script.
set -u
OUT=${1:-${OUT:-/tmp/gpu-checks}}
mkdir -p "$OUT"
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
SUMMARY="$OUT/summary.txt"
: > "$SUMMARY"

say() { echo "$*" | tee -a "$SUMMARY"; }
step() {  # step NAME LINES COMMAND...: run it with a time limit, keep its log, put its last LINES lines in the summary
  local name=$1 lines=$2
  shift 2
  say "== $name: $*"
  local t0=$SECONDS
  timeout "${STEP_TIMEOUT:-240}" "$@" > "$OUT/$name.log" 2>&1
  local rc=$?
  say "   exit $rc after $((SECONDS - t0)) s"
  tail -n "$lines" "$OUT/$name.log" | sed 's/^/   /' | tee -a "$SUMMARY"
}

say "== device"
[ "${SMOKE:-0}" = 1 ] || nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv 2>&1 | tee -a "$SUMMARY"
$PY -c "import torch; c = torch.cuda.is_available(); print('torch', torch.__version__, 'cuda', torch.version.cuda,
torch.cuda.get_device_name() if c else 'no GPU', 'bf16', c and torch.cuda.is_bf16_supported(),
'nccl', torch.distributed.is_nccl_available())" 2>&1 | tee -a "$SUMMARY"

if [ "${SMOKE:-0}" = 1 ]; then
  DEV=cpu L=2 H=2 E=64 T=64 V=512 B=2 STEPS=6 HALF=fp32
else
  DEV=cuda L=12 H=12 E=768 T=1024 V=50304 B=8 STEPS=60 HALF=fp16
fi
GPT2="--n-layer $L --n-head $H --n-embd $E --block-size $T --vocab $V --batch $B"
step train_bf16 6 $PY benchmarks/train_throughput.py --device $DEV --precision bf16 --hf-precision same $GPT2 \
  --steps 10 --warmup 3
step train_bf16_compile 6 $PY benchmarks/train_throughput.py --device $DEV --precision bf16 --hf-precision same \
  $GPT2 --steps 10 --warmup 5 --compile

# The engine on a prepared corpus (the built-in synthetic one, characters: the shape, not the text, is timed).
DATA="$OUT/data"
step prepare 2 $PY -m core prepare --input @synthetic --out "$DATA" --tokenizer char
for prec in bf16 $HALF; do
  cat > "$OUT/engine-$prec.yaml" <<EOF
model: {n_layer: $L, n_head: $H, n_embd: $E, block_size: $T, dropout: 0.0}
data: {dir: $DATA}
train: {batch_size: $B, max_steps: $STEPS, lr: 6.0e-4, min_lr: 6.0e-5, warmup_steps: 5, eval_interval: 0,
        eval_steps: 4, checkpoint_interval: 0, device: $DEV, precision: $prec, log_interval: 5}
run: {dir: $OUT/run-$prec, save_attention: false}
EOF
done
last_events() {  # the start event's precision and backend, and the last step event
  $PY - "$1" <<'EOF'
import json, sys
events = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
start = next((e for e in events if e.get("event") == "start"), {})
steps = [e for e in events if e.get("event") == "step"]
print("start:", {k: start.get(k) for k in ("device", "precision", "world_size", "backend", "compile")})
if steps:
    s = steps[-1]
    print("last step:", {k: s.get(k) for k in ("step", "loss", "tokens_per_s", "mfu")})
print("end:", events[-1].get("event") if events else None, events[-1].get("reason", "") if events else "")
EOF
}
step engine_bf16 0 $PY -m core train --config "$OUT/engine-bf16.yaml" --events
last_events "$OUT/engine_bf16.log" | tee -a "$SUMMARY"
rm -rf "$OUT/run-bf16"
step engine_ddp_nccl 0 torchrun --standalone --nproc_per_node 1 -m core train --config "$OUT/engine-bf16.yaml" --events
last_events "$OUT/engine_ddp_nccl.log" | tee -a "$SUMMARY"
step engine_${HALF}_scaler 0 $PY -m core train --config "$OUT/engine-$HALF.yaml" --events
last_events "$OUT/engine_${HALF}_scaler.log" | tee -a "$SUMMARY"

step generate 4 $PY benchmarks/generate_speed.py --device $DEV --dtype bfloat16 --hf-dtype same --n-layer $L \
  --n-head $H --n-embd $E --vocab $V --block-size $T --new-tokens $((T < 512 ? 32 : 256)) --repeat 3
if [ "${SMOKE:-0}" != 1 ]; then  # issue 10: an imported 135M Llama-shaped model, 128 new tokens, vs transformers
  step generate_imported_135m 5 $PY benchmarks/interop_generate.py --device cuda --repeat 3
fi
if [ "${SMOKE:-0}" = 1 ]; then
  step lora_vs_peft 6 $PY benchmarks/finetune_lora.py --device cpu --n-layer 2 --seq 64 --batch 1 --steps 2 --warmup 1
else
  step lora_vs_peft 6 $PY benchmarks/finetune_lora.py --device cuda --precision bf16 --steps 10 --warmup 3 --repeat 3
fi
say "== done: $OUT"
