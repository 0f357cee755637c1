"""The demo workspace: the engine's built-in corpus, prepared on first start, and a tiny CPU run.

`llm-studio` with no workspace opens it, so the first window already shows something useful: the
data is prepared in the background (`llm-train prepare --input @synthetic --tokenizer char`) and a run
named "demo" waits, configured to train visibly for a minute or two on a laptop CPU (long enough to
watch the curves, Stop and Resume). Its `examples/` folder holds files in the corpus's own characters to
try the rest with: instruction data to fine-tune the trained demo on (Run → Fine-tune, where it is
filled in), question/answer pairs and a held-out text to evaluate it on (Run → Evaluate Checkpoint).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from core import layout
from studio.controllers.prepare_request import PrepareRequest
from studio.engine.command import engine_command, engine_env, train_args
from studio.workspace.run import Run
from studio.workspace.workspace import EXAMPLE_FILES, EXAMPLES, Workspace

DEMO_DATA = "demo"
DEMO_RUN = "demo"

TINY_CONFIG = """\
# A small GPT that trains on a laptop CPU in a minute or two: watch the loss fall live, Stop and Resume
# it, then fork it or scale it up. (The Config tab estimates the time from runs measured on this machine.)
model:
  n_layer: 4          # transformer blocks
  n_head: 4           # attention heads per block
  n_embd: 128         # residual stream width
  block_size: 64      # context length, tokens
data:
  dir: ../../data/{data}
train:
  batch_size: 16
  max_steps: {max_steps}
  eval_interval: 50
  eval_steps: 4
  checkpoint_interval: 100
  warmup_steps: 50
  device: cpu
  lr: 2.0e-3
  min_lr: 2.0e-4
  sample_tokens: 120  # text written at each evaluation (Samples, below the curves): watch it learn
run:
  dir: .
"""
DEMO_PROBE_TEXT = "copy: abcdef|abcdef\nreverse: abcdef|fedcba\nadd: 123+456=579"
DEMO_PROBE = ("  # in the corpus's own characters (a char tokenizer shows <unk> for any other)\n"
              f"  attention_probe: {json.dumps(DEMO_PROBE_TEXT)}\n")  # JSON's string is YAML's double-quoted one


def home_dir() -> str:
    """Where the studio keeps its own folders (LLM_STUDIO_HOME overrides, e.g. in tests)."""
    override = os.environ.get("LLM_STUDIO_HOME")
    if override:
        return override
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(base, "llm-studio")


def default_demo_root() -> str:
    return os.path.join(home_dir(), "demo-workspace")


DEMO_STEPS = 1000  # about 60-100 ms a step on a laptop CPU: a minute or two to watch


def tiny_config_text(data: str = DEMO_DATA, max_steps: int = DEMO_STEPS) -> str:
    """The tiny config on data/<data>; the demo corpus's attention probe only on the demo data (its text is
    in that corpus's characters; other data sets keep the engine's default probe)."""
    return TINY_CONFIG.format(data=data, max_steps=max_steps) + (DEMO_PROBE if data == DEMO_DATA else "")


def default_config_text(ws: Workspace) -> str:
    """A new run's config: the tiny one, on default_data(ws)."""
    return tiny_config_text(default_data(ws))


def default_data(ws: Workspace) -> str:
    """The data set a new run trains on: the one prepared last (the one just made on the Data tab;
    instruction data sets, which need a base model, are left to the fine-tuning flow), else the demo's."""
    plain = []
    for path in ws.datasets():
        meta = layout.read_json(os.path.join(path, layout.DATA_META))
        if meta.get("kind") != "sft":
            plain.append((_mtime(os.path.join(path, layout.DATA_META)), os.path.basename(path)))
    return max(plain)[1] if plain else DEMO_DATA


def _mtime(path: str) -> float:
    try:
        return os.path.getmtime(path)
    except OSError:
        return 0.0


def ensure_demo_workspace(root: str | None = None) -> Workspace:
    """The demo workspace folder with its 'demo' run (data may still need preparing) and its examples."""
    ws = Workspace.create(root or default_demo_root(), name="Demo")
    if not ws.runs():
        ws.create_run(DEMO_RUN, tiny_config_text())
    write_examples(ws.root)
    return ws


EXAMPLE_SEEDS = {"finetune": 1, "pairs": 2, "text": 3}  # none is the corpus's own seed (1337)


def _example_text(kind: str) -> str:
    from core.corpora import synthetic_pairs, synthetic_text  # pure Python; only when a file is missing

    seed = EXAMPLE_SEEDS[kind]
    if kind == "text":  # a held-out stretch of the corpus, for perplexity and bits per byte
        return synthetic_text(seed, 0, 16 << 10)
    if kind == "pairs":  # answered by the model, scored against the reference
        return "".join(json.dumps({"prompt": q, "reference": a}) + "\n" for q, a in synthetic_pairs(seed, 60))
    return "".join(json.dumps({"prompt": q, "completion": a}) + "\n" for q, a in synthetic_pairs(seed, 2000))


def write_examples(root: str) -> None:
    """WORKSPACE/examples: the files EXAMPLE_FILES names, written where missing (never replaced: a user may
    have edited them); a folder that cannot be written is left as it is."""
    folder = os.path.join(root, EXAMPLES)
    for kind, name in EXAMPLE_FILES.items():
        path = os.path.join(folder, name)
        if not os.path.exists(path):
            try:
                os.makedirs(folder, exist_ok=True)
                layout.atomic_write(path, _example_text(kind))
            except OSError:
                return


def demo_data_dir(ws: Workspace) -> str:
    return os.path.join(ws.data_dir, DEMO_DATA)


def is_demo_workspace(ws: Workspace) -> bool:
    """Whether `ws` is the demo workspace (its folder has the demo's name, wherever the home is)."""
    return os.path.basename(ws.root) == os.path.basename(default_demo_root())


def demo_data_ready(ws: Workspace) -> bool:
    return layout.is_data_dir(demo_data_dir(ws))


def prepare_request(ws: Workspace) -> PrepareRequest:
    """The demo corpus: the engine's built-in synthetic tasks, one token per character."""
    return PrepareRequest(("@synthetic",), demo_data_dir(ws), tokenizer="char")


def prepare_args(ws: Workspace) -> list[str]:
    """`llm-train prepare` arguments for the demo corpus."""
    return prepare_request(ws).arguments()


def _env() -> dict:
    return engine_env()


def build_finished_demo(root: str | None = None, max_steps: int = 300) -> Run:
    """Blocking (command line use only, e.g. --screenshot): prepare the data and train a demo run to the
    end if the workspace has no finished run yet. Returns the finished run."""
    ws = ensure_demo_workspace(root)
    if not demo_data_ready(ws):
        subprocess.run(engine_command("prepare", *prepare_args(ws)), check=True, env=_env(),
                       stdout=subprocess.DEVNULL)
    for run in ws.runs():
        if run.status() == "done":
            return run
    run = ws.run(DEMO_RUN)
    if run.has_metrics():
        run = ws.create_run("demo-finished", tiny_config_text(max_steps=max_steps))
    else:
        run.write_config_text(tiny_config_text(max_steps=max_steps))
    with open(run.log_path, "ab") as log:
        subprocess.run(engine_command("train", *train_args(run.config_path)), check=False, env=_env(),
                       stdout=subprocess.DEVNULL, stderr=log, cwd=run.dir)
    return run


DEMO_FORK = "demo-fork-low-lr"


def build_demo_fork(root: str | None = None, fork_step: int | None = None) -> Run:
    """Blocking (command line use only): fork the finished demo run at `fork_step` (default: its checkpoint
    nearest half way) with a 3x lower peak learning rate and train the fork to the end, so screenshots
    show lineage and the parent's curve."""
    parent = build_finished_demo(root)
    if fork_step is None:
        steps = [ck.step for ck in parent.checkpoints()]
        fork_step = min(steps, key=lambda s: abs(s - steps[-1] / 2)) if steps else 0
    ws = ensure_demo_workspace(root)
    fork = ws.run(DEMO_FORK)
    if fork.status() == "done":
        return fork
    if not os.path.isdir(fork.dir):
        checkpoint = os.path.join(parent.dir, layout.CHECKPOINTS, layout.step_dir_name(fork_step))
        fork = ws.fork_run(parent, checkpoint, {"train.lr": 1.0e-3, "train.min_lr": 1.0e-4}, name=DEMO_FORK)
    with open(fork.log_path, "ab") as log:
        subprocess.run(engine_command("train", *train_args(fork.config_path)), check=False, env=_env(),
                       stdout=subprocess.DEVNULL, stderr=log, cwd=fork.dir)
    return fork


def main() -> int:
    """`python -m studio.demo [ROOT]`: build the finished demo workspace from the command line."""
    run = build_finished_demo(sys.argv[1] if len(sys.argv) > 1 else None)
    print(f"{run.dir}: {run.status()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
