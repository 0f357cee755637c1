"""The engine protocol: JSON Lines events (engine -> GUI) and requests (GUI -> inference worker).

Imported by both the engine and the studio, so it must stay pure Python (no torch, no Qt).

Every message is one JSON object on one line with:
  ``v``     the protocol version (PROTOCOL_VERSION),
  ``event`` its type (see EVENTS),
  ``time``  seconds since the epoch (float).

A training run opens with ``start`` and closes with exactly one of ``done``, ``stopped``, ``error``.
A missing close event plus a non-zero exit code means the process died. Unknown event types must be kept,
not treated as errors (a newer engine may talk to an older GUI). Large arrays travel as ``.npy``/``.npz``
files named in the event, never inline.

Event fields (all optional beyond v/event/time unless stated):
  start       run_dir, config (resolved dict), params, device, precision, precision_reason (why: native
              bf16, model width), world_size, local_world_size (processes on this node), tokens_per_step,
              max_steps, start_step, resumed (bool), parent (checkpoint path or None), versions
  step        step, tokens, loss, lr, grad_norm (pre-clip), clipped (bool), tokens_per_s, elapsed_s,
              step_ms
  eval        step, tokens, train_loss, val_loss, val_ppl, best_val_loss, elapsed_s
  sample      step, prompt, text
  attention   step, path (npz: probs [n_layer, n_head, T, T] float32, tokens)
  checkpoint  step, path
  progress    stage, done, total (prepare and other long jobs)
  log         level, message
  stopped     step, reason, checkpoint
  done        step, checkpoint, best_val_loss, reason (only when it ended before max_steps: the
              evaluation reached train.target_val_loss)
  error       kind, message, field (dotted config path) when there is one, step
Inference worker (``llm-train serve``) replies; each but ``ready`` carries the request ``id``:
  ready       checkpoint, step, vocab_size, n_layer, n_head, n_embd, block_size, scratch
  token       id, index, token_id, text (display piece), prob (the model's probability of the token),
              p_sample (its probability under the sampling distribution), top (list of
              [text, token_id, prob], the model's most likely tokens)
  result      id, op, and per op: generate {text, n_tokens, token_ids, prompt_ids, stopped_by: length |
              stop_string | eos | cancel}; attention {path (.npy [n_layer, n_head, T, T]), shape, tokens,
              token_ids, truncated}; tokenize {token_ids, tokens}; load {checkpoint, step, ...}
  (error with id set answers a failed request; the worker carries on)
"""

from __future__ import annotations

import json
import math
import time
from typing import Any

PROTOCOL_VERSION = 1

RUN_EVENTS = ("start", "step", "eval", "sample", "attention", "checkpoint", "progress", "log")
CLOSE_EVENTS = ("done", "stopped", "error")
WORKER_EVENTS = ("ready", "token", "result")
EVENTS = RUN_EVENTS + CLOSE_EVENTS + WORKER_EVENTS

# Requests the studio sends to `llm-train serve` (one JSON object per line on its stdin).
REQUESTS = ("generate", "attention", "tokenize", "cancel", "load", "shutdown")

# Plain-text control line accepted on a training run's stdin.
STOP_LINE = "stop"

# `export` ends its stderr with this line's prefix and how to run what it wrote (the studio shows it).
RUN_HINT = "run it with "


def _clean(value: Any) -> Any:
    """JSON has no NaN/inf: send them as strings the reader turns back into floats."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # "nan", "inf", "-inf"
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def make_event(event: str, **fields: Any) -> dict:
    """A protocol message dict with version, type and timestamp."""
    return {"v": PROTOCOL_VERSION, "event": event, "time": time.time(), **fields}


def make_request(op: str, id: str | int, **fields: Any) -> dict:
    """A request for the inference worker."""
    return {"v": PROTOCOL_VERSION, "op": op, "id": id, **fields}


def encode(message: dict) -> str:
    """One line of JSON (with trailing newline), NaN-safe."""
    return json.dumps(_clean(message), separators=(",", ":"), ensure_ascii=False) + "\n"


def parse_event(line: str | bytes) -> dict | None:
    """A protocol message from one line, or None when the line is plain text (a log line, a banner).

    Never raises: anything that is not a JSON object with an ``event`` (or ``op``) field is text.
    """
    if isinstance(line, bytes):
        line = line.decode("utf-8", errors="replace")
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        obj = json.loads(line)
    except ValueError:
        return None
    if not isinstance(obj, dict) or not ("event" in obj or "op" in obj):
        return None
    return obj


def as_float(value: Any) -> float:
    """Read a numeric field that may have been sent as "nan"/"inf"."""
    if value is None:
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def is_close(event: dict) -> bool:
    return event.get("event") in CLOSE_EVENTS


class LineBuffer:
    """Splits a byte stream into complete lines; keeps a partial last line until its newline arrives."""

    def __init__(self) -> None:
        self._pending = b""

    def feed(self, data: bytes | str) -> list[str]:
        if isinstance(data, str):
            data = data.encode("utf-8")
        self._pending += data
        if b"\n" not in self._pending:
            return []
        *lines, self._pending = self._pending.split(b"\n")
        return [ln.decode("utf-8", errors="replace").rstrip("\r") for ln in lines]

    def flush(self) -> list[str]:
        """The unterminated remainder (call when the stream ends)."""
        rest, self._pending = self._pending, b""
        return [rest.decode("utf-8", errors="replace")] if rest else []


def read_events(path: str) -> list[dict]:
    """All events of a metrics.jsonl file (a torn last line from a killed writer is ignored)."""
    out = []
    try:
        with open(path, "rb") as fh:
            for raw in fh:
                ev = parse_event(raw)
                if ev is not None:
                    out.append(ev)
    except FileNotFoundError:
        pass
    return out
