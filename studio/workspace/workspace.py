"""A workspace folder: prepared data sets under data/, runs under runs/, settings in workspace.json.

Creating runs (fresh, "new run from this one", "fork from checkpoint") lives here, so every view and
test uses the same rules: a run's config.yaml says `run.dir: .` and names its data and parent
checkpoint relative to the run folder, so a workspace can be moved as a whole.
"""

from __future__ import annotations

import functools
import os
import platform
import re
import sys
import time

from core import layout
from studio.workspace.run import Run

SETTINGS_FILE = "workspace.json"


class Workspace:
    """One workspace folder."""

    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)

    @classmethod
    def create(cls, root: str, name: str | None = None) -> Workspace:
        ws = cls(root)
        os.makedirs(ws.data_dir, exist_ok=True)
        os.makedirs(ws.runs_dir, exist_ok=True)
        if not os.path.exists(ws.settings_path):
            ws.save_settings({"name": name or os.path.basename(ws.root), "created": time.time()})
        return ws

    @staticmethod
    def is_workspace(root: str) -> bool:
        return os.path.isdir(os.path.join(root, "runs")) or os.path.exists(os.path.join(root, SETTINGS_FILE))

    @property
    def name(self) -> str:
        return str(self.settings().get("name") or os.path.basename(self.root))

    @property
    def data_dir(self) -> str:
        return os.path.join(self.root, "data")

    @property
    def runs_dir(self) -> str:
        return os.path.join(self.root, "runs")

    @property
    def settings_path(self) -> str:
        return os.path.join(self.root, SETTINGS_FILE)

    def settings(self) -> dict:
        return layout.read_json(self.settings_path)

    def save_settings(self, settings: dict) -> None:
        layout.atomic_write_json(self.settings_path, settings)

    def update_settings(self, **changes) -> None:
        self.save_settings({**self.settings(), **changes})

    # ------------------------------------------------------------------ contents
    def datasets(self) -> list[str]:
        """Prepared data folders under data/ (core.layout's rule, the engine's), sorted by name."""
        return layout.list_data_dirs(self.data_dir)

    def runs(self) -> list[Run]:
        """Run folders (those with a config.yaml), oldest first."""
        return sorted((Run(d) for d in self.run_dirs()), key=lambda r: (r.created(), r.name))

    def run_dirs(self) -> set[str]:
        """The absolute paths of the run folders (those with a config.yaml), in no order: cheap to poll."""
        try:
            names = os.listdir(self.runs_dir)
        except OSError:
            return set()
        return {os.path.abspath(os.path.join(self.runs_dir, n)) for n in names
                if os.path.exists(os.path.join(self.runs_dir, n, layout.CONFIG))}

    def run(self, name: str) -> Run:
        return Run(os.path.join(self.runs_dir, name))

    def unique_run_name(self, base: str, counted: bool = True) -> str:
        """`base`, or the next free name: a trailing number counts up (`demo-1` -> `demo-2`) when `counted`,
        else `-2`, `-3` is added (a fork's `demo-from-1000` must not become `demo-from-1001`, another step)."""
        base = safe_name(base) or "run"
        if not os.path.exists(os.path.join(self.runs_dir, base)):
            return base
        m = re.match(r"^(.*?)-(\d+)$", base) if counted else None
        stem = m.group(1) if m else base
        i = int(m.group(2)) + 1 if m else 2
        while os.path.exists(os.path.join(self.runs_dir, f"{stem}-{i}")):
            i += 1
        return f"{stem}-{i}"

    # ------------------------------------------------------------------ creating runs
    def create_run(self, name: str, config_text: str) -> Run:
        """A new run folder holding `config_text` as config.yaml (run.dir forced to the folder)."""
        run = self.run(self.unique_run_name(name))
        os.makedirs(run.dir)
        run.write_config_text(with_changes(config_text, {"run.dir": "."}))
        run.set_lineage("new", None)
        return run

    def new_run_from(self, parent: Run, name: str | None = None) -> Run:
        """'New run from this one': a fresh run with a copy of the parent's config, to edit. A copy that
        trains from step 0 drops a continued run's schedule restart (train.restart_step), which belonged to
        the parent's second stretch."""
        text, cfg = parent.read_config_text(), parent.config_or_none()
        if cfg is not None and not cfg.train.init_from and cfg.train.restart_step:
            text = without_keys(text, ("train.restart_step", "train.restart_lr"))
        run = self.create_run(name or f"{parent.name}-copy", text)
        run.set_lineage("copy", os.path.relpath(parent.dir, run.dir))
        return run

    def finetune_run(self, name: str, config_text: str, base_checkpoint: str) -> Run:
        """A fine-tune of `base_checkpoint` (its config already says train.init_from): a new run whose
        lineage names the base's run, so it nests under it, and the checkpoint."""
        run = self.create_run(name, config_text)
        parent = run_of(base_checkpoint)
        parent_rel = os.path.relpath(parent, run.dir) if parent and os.path.isfile(os.path.join(parent, layout.CONFIG)) \
            else None
        run.set_lineage("finetune", parent_rel, os.path.relpath(base_checkpoint, run.dir))
        return run

    def fork_run(self, parent: Run, checkpoint: str, changes: dict | None = None,
                 name: str | None = None) -> Run:
        """'Fork from checkpoint': starts from the checkpoint's weights and optimizer (train.init_from)."""
        text = parent.read_config_text()
        run = self.create_run(name or f"{parent.name}-fork", text)
        updates = {"train.init_from": os.path.relpath(checkpoint, run.dir), **(changes or {})}
        run.write_config_text(with_changes(run.read_config_text(), updates))
        run.set_lineage("fork", os.path.relpath(parent.dir, run.dir), os.path.relpath(checkpoint, run.dir))
        return run


def safe_name(text: str) -> str:
    """`text` as a folder name: runs of other characters become '-', no leading or trailing '-' or '.'."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.")


def unique_name(name: str, taken: set[str]) -> str:
    """`name`, or `name-2`, `name-3`, ... : the first not in `taken`."""
    if name not in taken:
        return name
    i = 2
    while f"{name}-{i}" in taken:
        i += 1
    return f"{name}-{i}"


EXAMPLES = "examples"
# what each example file is for (the dialog that fills it in) -> its name in WORKSPACE/examples (the demo's)
EXAMPLE_FILES = {"finetune": "tasks-chat.jsonl", "pairs": "tasks-eval.jsonl", "text": "held-out.txt"}


def example_file(root: str, kind: str) -> str:
    """The workspace's example file for `kind` (finetune, pairs, text) when it has one (the demo does), else ''."""
    path = os.path.join(root, EXAMPLES, EXAMPLE_FILES[kind]) if root else ""
    return path if path and os.path.isfile(path) else ""


def run_of(checkpoint: str) -> str:
    """The run folder of RUN/checkpoints/step-N ('' when the path is not laid out that way)."""
    parent = os.path.dirname(os.path.normpath(checkpoint))
    return os.path.dirname(parent) if os.path.basename(parent) == layout.CHECKPOINTS else ""


def with_changes(config_text: str, changes: dict) -> str:
    """Config YAML with `section.key` values replaced, comments and key order kept (core.config_text);
    text that cannot be edited is returned as it is (the editor shows why)."""
    from core.config import ConfigError
    from core.config_text import apply_changes

    try:
        return apply_changes(config_text, changes)
    except ConfigError:
        return config_text


@functools.cache  # asked at every config edit (the Start check, the time estimate); drivers do not come and go
def gpu_driver_present() -> bool:
    """Whether this machine has a GPU driver torch's "cuda" device could use (NVIDIA's, or AMD's ROCm, which
    torch also calls cuda), read from the system without torch; True where it cannot tell."""
    if sys.platform.startswith("linux"):
        return any(os.path.exists(p) for p in ("/proc/driver/nvidia/version", "/dev/nvidiactl", "/dev/kfd"))
    if sys.platform == "darwin":
        return False  # no CUDA on macOS: its GPU is "mps"
    if sys.platform == "win32":
        return os.path.exists(os.path.join(os.environ.get("SystemRoot", r"C:\Windows"), "System32", "nvcuda.dll"))
    return True


def auto_device(engine: dict | None = None) -> str:
    """What train.device: auto becomes here (core.device's order: cuda, mps, cpu), from the engine's own
    `version --json` answer when the studio has it, else from the system."""
    if engine is not None:
        return "cuda" if engine.get("cuda_available") else "mps" if engine.get("mps_available") else "cpu"
    if sys.platform == "darwin":
        return "mps" if platform.machine() == "arm64" else "cpu"
    return "cuda" if gpu_driver_present() else "cpu"


def device_problem(device: str, engine: dict | None = None) -> str | None:
    """Why the engine would refuse train.device `device` here (it fails at start-up, after the user pressed
    Start), when that is known without starting it: from the engine's own `version --json` answer when the
    studio has it, else from the system (no GPU driver, no Apple GPU)."""
    fix = "choose CPU in Device beside Start, or set train.device to auto or cpu"
    if device.startswith("cuda"):
        if engine is not None and not engine.get("cuda_available"):
            return (f"train.device: {device}, but the engine (torch {engine.get('torch', '?')}) sees no CUDA GPU "
                    f"on this machine: {fix}")
        if engine is None and not gpu_driver_present():
            return f"train.device: {device}, but this machine has no GPU driver (no CUDA GPU): {fix}"
    has_mps = engine.get("mps_available") if engine is not None else sys.platform == "darwin"
    if device == "mps" and not has_mps:
        return f"train.device: mps is Apple's GPU, which this machine does not have: {fix}"
    return None


def launch_problems(run: Run, config_text: str | None = None, device: str = "",
                    engine: dict | None = None) -> list[str]:
    """Why this run cannot be started (beyond config validation), in words; empty when it can. `device`:
    the Training bar's choice over train.device ("" = the config's); `engine`: its `version --json`, if known."""
    from core.config import ConfigError, loads

    text = run.read_config_text() if config_text is None else config_text
    try:
        cfg = loads(text, base_dir=run.dir)
    except ConfigError as exc:
        return [str(p) for p in exc.problems]
    problems = []
    no_device = device_problem(device or cfg.train.device, engine)
    if no_device:
        problems.append(no_device)
    if not layout.is_data_dir(cfg.data.dir):
        problems.append(f"data.dir: no prepared data in {cfg.data.dir} (prepare it on the Data tab)")
    checkpoint = layout.checkpoint_problem(cfg.train.init_from) if cfg.train.init_from else None
    if checkpoint:
        problems.append(f"train.init_from: {checkpoint}")  # the engine's own words for the same refusal
    if os.path.normpath(cfg.run.dir) != os.path.normpath(run.dir):
        problems.append(f"run.dir: must be this run's folder ('.'), not {cfg.run.dir}")
    return problems


def without_keys(config_text: str, paths: tuple[str, ...]) -> str:
    """Config YAML without these dotted keys; text that cannot be edited is returned as it is."""
    from core.config import ConfigError
    from core.config_text import remove_value

    try:
        for path in paths:
            config_text = remove_value(config_text, path)
    except ConfigError:
        pass
    return config_text
