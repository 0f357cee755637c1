#!/usr/bin/env bash
# Smoke test of a built Linux bundle, as a user without Python would run it.
#
#   packaging/smoke.sh BUNDLE        BUNDLE: the bundle folder (with the llm-studio executable) or the
#                                    downloadable .tar.gz (unpacked into a temp folder first)
#
# From a temp folder outside the source tree, in an environment emptied with `env -i` (PATH=/usr/bin:/bin,
# HOME in the temp folder, no virtualenv, no PYTHONPATH), it:
#   1. starts the studio offscreen to its first window, three times (cold start, seconds);
#   2. prepares the demo corpus, trains 20 steps through the detached launcher (`launch`), generates
#      text (`engine generate`) and answers one request of the inference worker (`engine serve`);
#   3. renders a screenshot of that workspace (`--screenshot`);
#   4. trains 4 steps with 2 processes through the bundle's torchrun (`torchrun ... --no-python`);
#   5. asks the engine for its build (`version --json`);
# while a watcher records the executable (/proc/PID/exe) of every process carrying this run's marker
# variable, then fails if any of them is an interpreter or any other program from outside the bundle
# (git, which the engine asks for commit ids, and the shell are the only programs allowed outside).
# Prints the timings and writes them to $SMOKE_REPORT (default: WORKDIR/smoke-report.json).
set -euo pipefail

[ $# -eq 1 ] || { echo "usage: $0 BUNDLE_DIR|BUNDLE.tar.gz" >&2; exit 2; }
WORK=$(mktemp -d "${TMPDIR:-/tmp}/llm-studio-smoke.XXXXXX")
if [ -f "$1" ]; then
    tar -xzf "$1" -C "$WORK"
    BUNDLE="$WORK/llm-studio"
else
    BUNDLE=$(cd "$1" && pwd)
fi
EXE="$BUNDLE/llm-studio"
[ -x "$EXE" ] || { echo "smoke: no executable $EXE" >&2; exit 2; }
REPORT=${SMOKE_REPORT:-$WORK/smoke-report.json}
TAG="smoke-$$-$RANDOM"
mkdir -p "$WORK/home" "$WORK/ws"
cd "$WORK"
echo "smoke: bundle $BUNDLE, working in $WORK"

# Every process of the bundle inherits LLM_SMOKE_TAG, detached ones included (the launcher's setsid
# leaves the parent chain, not the environment).
bundle() {
    env -i PATH=/usr/bin:/bin HOME="$WORK/home" LANG=C.UTF-8 TMPDIR="$WORK" QT_QPA_PLATFORM=offscreen \
        OMP_NUM_THREADS=2 LLM_SMOKE_TAG="$TAG" "$EXE" "$@"
}
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }
fail() { echo "smoke: FAILED: $*" >&2; exit 1; }

watch_processes() {
    while [ ! -e "$WORK/.stop-watch" ]; do
        for env_file in $(grep -l -a -s "LLM_SMOKE_TAG=$TAG" /proc/[0-9]*/environ 2>/dev/null || true); do
            pid_dir=${env_file%/environ}
            exe=$(readlink "$pid_dir/exe" 2>/dev/null) || continue
            echo "$exe" >> "$WORK/exes.raw"
        done
        sleep 0.1
    done
}
watch_processes &
WATCHER=$!
trap 'touch "$WORK/.stop-watch"; wait $WATCHER 2>/dev/null || true' EXIT

# 1. cold start: process start to the first window shown (the studio quits right after).
STARTS=()
for _ in 1 2 3; do
    t0=$(now)
    bundle --quit-after-show "$WORK/ws" > "$WORK/start.log" 2>&1 || { cat "$WORK/start.log"; fail "studio did not start"; }
    STARTS+=("$(since "$t0")")
done
grep -q "first window shown" "$WORK/start.log" || fail "studio did not show its window"
echo "smoke: studio cold start to first window: ${STARTS[*]} s"

# 2. prepare, train 20 steps (detached launcher), generate, serve.
bundle engine prepare --input @synthetic --tokenizer char --out "$WORK/ws/data/demo" 2> "$WORK/prepare.log" \
    || { cat "$WORK/prepare.log"; fail "prepare"; }
[ -f "$WORK/ws/data/demo/train.bin" ] || fail "prepare wrote no train.bin"
mkdir -p "$WORK/ws/runs/smoke"
cat > "$WORK/ws/runs/smoke/config.yaml" <<'YAML'
model: {n_layer: 2, n_head: 2, n_embd: 32, block_size: 32}
data: {dir: ../../data/demo}
train: {batch_size: 8, max_steps: 20, eval_interval: 10, eval_steps: 2, checkpoint_interval: 20,
        warmup_steps: 2, device: cpu, lr: 3.0e-3}
run: {dir: .}
YAML
t0=$(now)
bundle launch "$WORK/ws/runs/smoke" -- "$EXE" engine train --config "$WORK/ws/runs/smoke/config.yaml" --events \
    || fail "launch"
TRAIN_S=$(since "$t0")
grep -q -E '"code": ?0' "$WORK/ws/runs/smoke/exit.json" || { cat "$WORK/ws/runs/smoke/engine.log"; fail "training exit code"; }
grep -q -E '"event": ?"done"' "$WORK/ws/runs/smoke/metrics.jsonl" || fail "training did not close with done"
STEPS=$(grep -c -E '"event": ?"step"' "$WORK/ws/runs/smoke/metrics.jsonl")
[ "$STEPS" -eq 20 ] || fail "expected 20 step events, got $STEPS"
echo "smoke: trained 20 steps in $TRAIN_S s"

TEXT=$(bundle engine generate --run "$WORK/ws/runs/smoke" --prompt "copy: " --max-new-tokens 40 --seed 1 \
    2> "$WORK/generate.log") || { cat "$WORK/generate.log"; fail "generate"; }
[ "${#TEXT}" -gt 10 ] || fail "generate printed too little: '$TEXT'"
echo "smoke: generated: $(echo "$TEXT" | head -c 120 | tr '\n' ' ')"

# The worker answers requests in turn: send the generate request, read up to its result, then shutdown.
coproc SERVE { bundle engine serve --run "$WORK/ws/runs/smoke" 2> "$WORK/serve.log"; }
echo '{"id": 1, "op": "generate", "prompt": "copy: ", "max_new_tokens": 8, "seed": 1}' >&"${SERVE[1]}"
ANSWERED=""
while IFS= read -r -t 300 line <&"${SERVE[0]}"; do
    if echo "$line" | grep -q -E '"event": ?"result"'; then ANSWERED=$line; break; fi
done
echo '{"id": 2, "op": "shutdown"}' >&"${SERVE[1]}"
wait "$SERVE_PID" || true
[ -n "$ANSWERED" ] || { cat "$WORK/serve.log"; fail "serve sent no result"; }
echo "smoke: the inference worker answered"

# 3. screenshot of the workspace with the finished run (the studio's `--screenshot` would otherwise
#    train its demo runs first; --panel config needs a finished run, not the demo's fork).
t0=$(now)
bundle --screenshot "$WORK/screenshot.png" --panel config "$WORK/ws" > "$WORK/screenshot.log" 2>&1 || { cat "$WORK/screenshot.log"; fail "screenshot"; }
SHOT_S=$(since "$t0")
[ "$(head -c 8 "$WORK/screenshot.png" | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ] || fail "no PNG written"
[ "$(stat -c %s "$WORK/screenshot.png")" -gt 20000 ] || fail "screenshot suspiciously small"
echo "smoke: screenshot $WORK/screenshot.png ($(stat -c %s "$WORK/screenshot.png") bytes) in $SHOT_S s"

# 4. two processes through the bundle's torchrun (what the studio's "processes: 2" runs).
mkdir -p "$WORK/ws/runs/ddp"
sed -e 's/max_steps: 20/max_steps: 4/' -e 's/eval_interval: 10/eval_interval: 4/' \
    -e 's/checkpoint_interval: 20/checkpoint_interval: 4/' \
    "$WORK/ws/runs/smoke/config.yaml" > "$WORK/ws/runs/ddp/config.yaml"
(cd "$WORK/ws/runs/ddp" && bundle torchrun --nproc_per_node=2 --standalone --no-python "$EXE" engine train \
    --config "$WORK/ws/runs/ddp/config.yaml" --events > "$WORK/ddp.out" 2> "$WORK/ddp.log") \
    || { tail -30 "$WORK/ddp.log"; fail "torchrun"; }
grep -q -E '"world_size": ?2' "$WORK/ddp.out" || fail "torchrun did not train with 2 processes"
grep -q -E '"event": ?"done"' "$WORK/ddp.out" || fail "torchrun run did not finish"
echo "smoke: torchrun trained with 2 processes"

# 5. the engine's build.
VERSION_JSON=$(bundle version --json 2> "$WORK/version.log") || { cat "$WORK/version.log"; fail "version"; }
echo "$VERSION_JSON" | grep -q -E '"frozen": ?true' || fail "version --json does not come from the bundle: $VERSION_JSON"
echo "smoke: engine $VERSION_JSON"

# 6. every process was the bundle (or git / a shell), never an interpreter from outside it.
touch "$WORK/.stop-watch"
wait $WATCHER 2>/dev/null || true
sort -u "$WORK/exes.raw" > "$WORK/exes.txt"
echo "smoke: executables seen: $(tr '\n' ' ' < "$WORK/exes.txt")"
grep -qx "$EXE" "$WORK/exes.txt" || fail "the watcher saw no bundle process (it cannot prove anything)"
OUTSIDE=$(grep -v "^$BUNDLE/" "$WORK/exes.txt" \
    | grep -v -E '^(/usr)?/(s?bin|lib/git-core)/(git|git-[a-z-]+|sh|dash|bash|ldconfig(\.real)?|uname)$' || true)
[ -z "$OUTSIDE" ] || fail "processes ran from outside the bundle: $OUTSIDE"

printf '{"cold_start_s": [%s], "screenshot_s": %s, "train_20_steps_s": %s, "executables": %s}\n' \
    "$(IFS=,; echo "${STARTS[*]}")" "$SHOT_S" "$TRAIN_S" \
    "[$(sed 's/.*/"&"/' "$WORK/exes.txt" | paste -sd, -)]" > "$REPORT"
echo "smoke: OK (report $REPORT)"
