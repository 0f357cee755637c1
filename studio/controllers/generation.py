"""GenerationSession: the Generate panel's requests, branching, token budgets, history and workers.

One or two output sides ("A", and "B" side by side) each hold a WorkerLink to the inference worker of
their checkpoint (`llm-train serve`, shared through the WorkerPool). A request streams `token` replies
that the session keeps (the output's tokens, with the model's top alternatives) and forwards to the view;
Stop cancels at once. Picking an alternative at a generated token keeps the text up to it and generates
on from the new token with what is left of the token budget. Finished generations go to the workspace's
prompt history. The view renders the session's state and calls its methods; it holds no request state.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from PySide6.QtCore import QObject, Signal

from core.layout import is_checkpoint
from studio.controllers.generation_history import GenerationHistory
from studio.controllers.workers import WorkerLink
from studio.engine.worker import InferenceWorker, WorkerPool

SIDES = ("A", "B")
TOP_N = 5  # alternatives asked for at each generated token


@dataclass
class SideState:
    """One output side: its worker link and the output it shows (tokens in order, prompt not included)."""

    name: str
    link: WorkerLink
    rid: str = ""                      # the request running now ("" when idle)
    offset: int = 0                    # index of the first token of the running request in the output
    prompt_ids: list[int] = field(default_factory=list)
    tokens: list[dict] = field(default_factory=list)   # token replies: text, token_id, prob, top, index
    t0: float = 0.0
    result: dict | None = None
    error: str = ""
    note: str = ""                     # e.g. "from history"
    checkpoint: str = ""               # the checkpoint that wrote the output shown ("" before any)

    @property
    def worker(self) -> InferenceWorker | None:
        return self.link.worker

    def output_text(self) -> str:
        return "".join(t.get("text", "") for t in self.tokens)

    def clear(self, note: str = "") -> None:
        """An empty output (a new request, a history entry, another workspace)."""
        self.tokens, self.result, self.error, self.offset, self.prompt_ids, self.note = [], None, "", 0, [], note


class GenerationSession(QObject):
    output_started = Signal(str, str)       # side, prompt: the side's output starts over
    token_received = Signal(str, dict)      # side, a token appended to its output
    output_truncated = Signal(str, int)     # side, tokens kept
    side_failed = Signal(str, str)          # side, message
    side_changed = Signal(str)              # side: its state (running, result, error) changed
    busy_changed = Signal(bool)
    generation_finished = Signal(dict)      # the history entry of a finished generation
    history_changed = Signal(list)          # the history's entries, newest first
    status_changed = Signal(str, bool)      # text, is an error

    def __init__(self, pool: WorkerPool | None = None, parent: QObject | None = None):
        super().__init__(parent)
        self.pool = pool or WorkerPool(self)
        self.history = GenerationHistory()
        self.prompt = ""                   # the prompt of the last request
        self.params: dict = {}             # the sampling settings of the last request
        self._active: list[str] = []       # the sides of the last request
        self.root = ""                     # the workspace whose models the outputs come from
        self.sides: dict[str, SideState] = {}
        for name in SIDES:
            link = WorkerLink(self.pool, self)
            link.token_received.connect(lambda ev, n=name: self._on_link_token_received(n, ev))
            link.result_received.connect(lambda ev, n=name: self._on_link_result_received(n, ev))
            link.request_failed.connect(lambda ev, n=name: self._on_link_request_failed(n, ev))
            link.worker_died.connect(lambda msg, n=name: self._on_link_worker_died(n, msg))
            self.sides[name] = SideState(name, link)

    # ------------------------------------------------------------------ state
    def set_workspace(self, root: str) -> None:
        """Another workspace: its prompt history, and the outputs of the last one's models cleared (a running
        generation is stopped): they came from checkpoints this workspace does not list."""
        if root != self.root:
            self.root = root
            self.stop()
            self.prompt, self._active = "", []
            for s in self.sides.values():
                s.clear()
                s.rid, s.checkpoint = "", ""
                self.output_started.emit(s.name, "")
                self.side_changed.emit(s.name)
            self.busy_changed.emit(False)
            self.status_changed.emit("", False)
        self.history = GenerationHistory(root)
        self.history_changed.emit(self.history.entries)

    def run_moved(self, old_dir: str, new_dir: str) -> None:
        """A run was renamed: the history's entries of its checkpoints follow it."""
        if self.history.moved(old_dir, new_dir):
            self.history_changed.emit(self.history.entries)

    def side(self, name: str) -> SideState:
        return self.sides[name]

    def is_busy(self) -> bool:
        return any(s.rid for s in self.sides.values())

    def can_branch(self, side: str, index: int) -> bool:
        """Whether generated token `index` of `side` offers alternatives to continue from now."""
        s = self.sides[side]
        return not s.rid and s.result is not None and index < len(s.tokens) and bool(s.tokens[index].get("top"))

    def inspect_target(self) -> tuple[str, str] | None:
        """(checkpoint, prompt + output) of side A's finished generation, for the attention panel."""
        s = self.sides["A"]
        if s.worker is None or s.result is None:
            return None
        return s.worker.checkpoint, self.prompt + s.output_text()

    # ------------------------------------------------------------------ requests
    def generate(self, prompt: str, params: dict, checkpoints: dict[str, str]) -> bool:
        """Generate from `prompt` on each side named in `checkpoints` (side -> checkpoint folder)."""
        if self.is_busy():
            return False
        if not checkpoints or not all(checkpoints.values()):
            self.status_changed.emit("Pick a checkpoint first.", True)
            return False
        self.prompt, self.params, self._active = prompt, dict(params), list(checkpoints)
        for name, checkpoint in checkpoints.items():
            s = self.sides[name]
            s.clear(s.note)  # the note goes when the request starts (_start)
            self.output_started.emit(name, prompt)
            self._start(s, checkpoint, prompt=prompt, **self.params)
        self.status_changed.emit("Generating…", False)
        return True

    def stop(self) -> None:
        for s in self.sides.values():
            s.link.cancel(s.rid)

    def pick_alternative(self, side: str, index: int, token_id: int) -> bool:
        """Replace generated token `index` of `side` by one of its alternatives and continue from there."""
        s = self.sides[side]
        if s.rid or s.result is None or index >= len(s.tokens):
            return False
        ev = s.tokens[index]
        alt = next((a for a in ev.get("top", []) if a[1] == token_id), None)
        if alt is None:
            return False
        kept = [t["token_id"] for t in s.tokens[:index]] + [token_id]
        del s.tokens[index:]
        self.output_truncated.emit(side, index)
        self._append(s, {**ev, "token_id": token_id, "text": alt[0], "prob": alt[2], "picked": True})
        params = dict(self.params)
        remaining = params["max_new_tokens"] - len(kept)   # the budget counts the kept tokens too
        s.offset = len(kept)
        if remaining <= 0:
            s.result = {**s.result, "text": s.output_text(), "n_tokens": len(kept)}
            self.side_changed.emit(side)
            return True
        params["max_new_tokens"] = remaining
        self._start(s, s.worker.checkpoint, prompt_ids=s.prompt_ids + kept, **params)
        return True

    def record(self, entry: dict) -> None:
        """Keep a chat conversation in the history (one entry per conversation, to the top)."""
        self.history.put(entry)
        self.history_changed.emit(self.history.entries)

    @staticmethod
    def entry_checkpoints(entry: dict) -> list[str]:
        """The checkpoint of each output of a history entry, "" where it is no longer a checkpoint."""
        return [out.get("checkpoint", "") if is_checkpoint(out.get("checkpoint", "")) else ""
                for out in entry.get("outputs", [])]

    def restore(self, entry: dict, sides: list[str]) -> None:
        """Show a history entry's outputs (as plain text, no alternatives) on `sides`."""
        if self.is_busy():
            return
        self.prompt, self.params = entry.get("prompt", ""), dict(entry.get("params", {}))
        for name, out in zip(sides, entry.get("outputs", []), strict=False):
            s = self.sides[name]
            s.clear("from history")
            s.checkpoint = out.get("checkpoint", "")
            self.output_started.emit(name, self.prompt)
            self._append(s, {"text": out.get("text", ""), "token_id": -1, "top": []})
            self.side_changed.emit(name)

    def shutdown(self, wait_ms: int = 0) -> None:
        for s in self.sides.values():
            s.rid = ""
            s.link.release(wait_ms)

    # ------------------------------------------------------------------ plumbing
    def _start(self, s: SideState, checkpoint: str, **fields) -> None:
        s.rid = s.link.request(checkpoint, "generate", top_n=TOP_N, **fields)
        s.checkpoint = checkpoint
        s.t0, s.note = time.monotonic(), ""
        self.side_changed.emit(s.name)
        self.busy_changed.emit(True)

    def _append(self, s: SideState, ev: dict) -> None:
        s.tokens.append(ev)
        self.token_received.emit(s.name, ev)

    def _on_link_token_received(self, side: str, ev: dict) -> None:
        s = self.sides[side]
        if ev.get("id") == s.rid:
            self._append(s, {**ev, "index": ev.get("index", 0) + s.offset})

    def _on_link_result_received(self, side: str, ev: dict) -> None:
        s = self.sides[side]
        if ev.get("id") != s.rid or ev.get("op") != "generate":
            return
        s.rid = ""
        if s.offset == 0:
            s.prompt_ids = list(ev.get("prompt_ids", []))
        s.result = {**ev, "text": s.output_text(), "n_tokens": len(s.tokens)}
        self.side_changed.emit(side)
        self._finish_if_idle()

    def _on_link_request_failed(self, side: str, ev: dict) -> None:
        s = self.sides[side]
        if ev.get("id") != s.rid:
            return
        s.rid, s.error = "", f"{ev.get('kind')}: {ev.get('message')}"
        self.side_failed.emit(side, s.error)
        self.side_changed.emit(side)
        self._finish_if_idle()

    def _on_link_worker_died(self, side: str, message: str) -> None:
        restarting = self.sides[side].link.is_restarting()
        self.status_changed.emit(message + ("\nThe worker is being restarted." if restarting else ""), True)

    def _finish_if_idle(self) -> None:
        if self.is_busy():
            return
        self.busy_changed.emit(False)
        active = [self.sides[n] for n in self._active]
        done = [s for s in active if s.result is not None]
        if not done:
            self.status_changed.emit("Generation failed: " + "; ".join(s.error for s in active if s.error), True)
            return
        outputs = [{"checkpoint": s.worker.checkpoint, "text": s.result["text"], "n_tokens": s.result["n_tokens"],
                    "stopped_by": s.result.get("stopped_by")} for s in done]
        entry = self.history.add(self.prompt, self.params, outputs)
        self.history_changed.emit(self.history.entries)
        self.status_changed.emit("Done. Hover a token for its alternatives; click one to continue from it.", False)
        self.generation_finished.emit(entry)


def share_cores(cores: int, training_runs: int, inference_busy: bool = False) -> dict:
    """How the studio shares the CPU cores (the engines' --threads; 0 = torch's default, all cores).

    From 4 cores, one core stays for the window and inference: training runs get the rest (split between
    runs that train at once). With 2 or 3, keeping a core idle costs a third to a half of the speed (on 2
    cores: 16k tokens/s on 1 thread, 20-26k on 2, while the window used 8% of a core), so training runs take
    every core while no inference request is in flight and give one back while Generate or Attention
    computes (studio.controllers.cores writes it to their control.json; the engine applies it between
    steps), and they are launched with --share-cores: OpenMP threads that spin only briefly before they
    sleep while they wait, because with every core in use another process (a data preparation, a second
    run, the browser) would otherwise stall spinning threads (2 threads on 2 cores beside a busy process:
    4.6k tokens/s spinning, 9.6k with the short spin, 12.2k on 1 thread; idle: 20.3k, 19.0k and 12.2k). An
    inference worker started while a run trains gets 1 thread. Without a share, torch in each process takes
    every core and the two starve each other."""
    cores = max(1, int(cores or 1))
    every = cores <= 3  # the runs take every core (and give one back while inference computes)
    free = cores - 1 if cores > 1 and (not every or inference_busy) else cores
    train = max(1, free // max(1, training_runs))
    worker = 1 if training_runs else 0
    if training_runs:
        runs = f"{training_runs} run{'s' if training_runs > 1 else ''}"
        text = (f"{cores} cores: {runs} training on {train} thread{'s' if train > 1 else ''}"
                + (" each" if training_runs > 1 else "")
                + ("; generation uses 1 thread" if not every else
                   " (1 core given to generation while it computes)" if inference_busy and cores > 1 else
                   "; generation takes 1 while it computes"))
    else:
        text = f"{cores} cores: generation may use them all (no run is training)"
    return {"train": train, "worker": worker, "text": text, "share": every}
