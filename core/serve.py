"""The inference worker behind `llm-train serve` (core.commands.serve): JSON Lines on stdin/stdout.

One worker holds one checkpoint (swap it with `load`). Requests are JSON objects on stdin, one per line,
made with `core.protocol.make_request` (``v``, ``op``, ``id``); every reply carries the request's ``id``:

  generate   prompt (str) or prompt_ids (list[int]), max_new_tokens, temperature, top_k, top_p,
             repetition_penalty, seed, stop (list of strings), top_n (alternatives per token, default 5)
             -> one ``token`` per new token {index, token_id, text (display piece), prob (the model's
                probability of it), p_sample (its probability under the sampling distribution),
                top: [[text, token_id, prob] x top_n]}
             -> ``result`` {op, text, n_tokens, token_ids, prompt_ids, stopped_by: length | stop_string |
                cancel | eos}
  attention  text (or ids) -> ``result`` {op, path (.npy in the scratch folder, float32
             [n_layer, n_head, T, T]), shape, tokens, token_ids, truncated}
  tokenize   text -> ``result`` {op, token_ids, tokens}
  cancel     target (a request id; default: whatever runs) -> ``result`` {op, target, cancelled}; the
             cancelled generation ends with stopped_by "cancel", a cancelled queued request answers
             ``error`` kind "cancelled"
  load       checkpoint or run -> ``result`` {op, checkpoint, step, vocab_size, n_layer, ...}
  shutdown   -> the worker finishes and exits 0

A reader thread parses stdin and puts requests on a queue, handling `cancel` and `shutdown` itself, so a
cancel is seen while a generation runs (the generation checks a flag between tokens). A bad request is
answered with ``error`` {id, kind, message}; the worker never dies of one. ``ready`` opens the stream once
the checkpoint is loaded; ``stopped`` (reason) closes it; a checkpoint that cannot be loaded at start is
an ``error`` without id and exit code 2. Human logs go to stderr.
"""

from __future__ import annotations

import json
import math
import os
import queue
import sys
import threading
import traceback
from typing import Any, TextIO

from core.chat import generation_stop_ids
from core.errors import UsageError, quote
from core.layout import atomic_write, resolve_checkpoint
from core.protocol import PROTOCOL_VERSION, REQUESTS, encode, make_event

MAX_TOP_N = 20
MAX_NEW_TOKENS = 100_000


class _Shutdown:
    """Queue sentinel: stop serving, with the reason reported in the closing `stopped` event."""

    def __init__(self, reason: str):
        self.reason = reason


class BadRequest(Exception):
    """A request the worker cannot serve; answered as an error with this kind."""

    def __init__(self, message: str, kind: str = "bad_request"):
        super().__init__(message)
        self.kind = kind


def _number(req: dict, name: str, kind: type, default: Any, low: float | None = None,
            high: float | None = None, allow_none: bool = False) -> Any:
    """Read and check one numeric request field."""
    value = req.get(name, default)
    if value is None and allow_none:
        return None
    what = "an integer" if kind is int else "a number"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadRequest(f"{name} must be {what}, got {quote(value, 80)}")
    if isinstance(value, float) and (not math.isfinite(value) or (kind is int and value != int(value))):  # NaN/inf (1e400) included
        raise BadRequest(f"{name} must be a finite {what[2:].lstrip()}, got {quote(value, 80)}")
    value = kind(value)
    if (low is not None and value < low) or (high is not None and value > high):
        raise BadRequest(f"{name} must be in [{low}, {high}], got {value}")
    return value


def _valid_id(rid: Any) -> bool:
    """Request ids are hashable scalars (they key the queue and the cancel sets): str, int or None."""
    return rid is None or (isinstance(rid, (str, int)) and not isinstance(rid, bool) and len(str(rid)) <= 200)


class Worker:
    """The model, the tokenizer and the request loop."""

    def __init__(self, device: str, scratch: str, out: TextIO = sys.stdout, dtype: str = "float32"):
        self.device, self.scratch, self.out = device, scratch, out
        self.dtype = dtype  # weights and KV cache: float32, bfloat16 or auto (core.generate.inference_dtype)
        self.model = self.tok = self.meta = None
        self.checkpoint = ""
        self._write_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._queue: queue.Queue = queue.Queue()
        self._queued: set = set()       # ids waiting in the queue
        self._cancelled: set = set()    # ids cancelled before they ran
        self._current: Any = None       # id of the request being served
        self._cancel_current = threading.Event()
        self._files = 0

    # ------------------------------------------------------------------ output
    def emit(self, event: str, **fields: Any) -> None:
        message = make_event(event, **fields)
        line = encode(message)
        try:
            line.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate (e.g. echoed from a request): escape it, never drop
            line = json.dumps(json.loads(line), separators=(",", ":"), ensure_ascii=True) + "\n"
        with self._write_lock:
            try:
                self.out.write(line)
                self.out.flush()
            except (BrokenPipeError, ValueError):  # the GUI went away; the reader sees EOF and we exit
                pass

    def fail(self, rid: Any, kind: str, message: str) -> None:
        self.emit("error", id=rid, kind=kind, message=message)

    # ------------------------------------------------------------------ model
    def load(self, path: str) -> dict:
        """Load a checkpoint folder (model + tokenizer); the previous one stays if this fails."""
        from core.generate import inference_dtype, load_for_generation, load_tokenizer_for

        model, meta = load_for_generation(path, self.device, inference_dtype(self.dtype, self.device))
        tok = load_tokenizer_for(path, meta)
        self.model, self.meta, self.tok, self.checkpoint = model, meta, tok, os.path.abspath(path)
        print(f"llm-train serve: loaded {path} (step {meta.get('step')})", file=sys.stderr, flush=True)
        return self.info()

    def info(self) -> dict:
        cfg = self.model.cfg
        return {"checkpoint": self.checkpoint, "step": self.meta.get("step"), "vocab_size": cfg.vocab_size,
                "n_layer": cfg.n_layer, "n_head": cfg.n_head, "n_embd": cfg.n_embd,
                "block_size": cfg.block_size, "pid": os.getpid()}

    # ------------------------------------------------------------------ reader thread
    def read_requests(self, stream: TextIO) -> None:
        """Parse stdin; cancel/shutdown act at once, everything else waits in the queue for the loop."""
        try:
            for line in stream:
                if line.strip():
                    try:
                        self._accept(line)
                    except Exception as exc:  # the reader must never die: answer and read on
                        traceback.print_exc(file=sys.stderr)
                        self.fail(None, "bad_request", f"cannot handle request: {type(exc).__name__}: "
                                                       f"{quote(str(exc))}")
        except (OSError, ValueError):
            pass
        self._queue.put(_Shutdown("end of input"))  # stdin closed: the GUI is gone

    def _accept(self, line: str) -> None:
        try:
            req = json.loads(line)
        except ValueError:
            self.fail(None, "bad_request", f"not JSON: {quote(line.strip(), 80)}")
            return
        if not isinstance(req, dict):
            self.fail(None, "bad_request", "a request must be a JSON object")
            return
        rid, op = req.get("id"), req.get("op")
        if not _valid_id(rid):
            self.fail(None, "bad_request", f"id must be a string or an integer, got {quote(rid, 80)}")
        elif req.get("v", PROTOCOL_VERSION) != PROTOCOL_VERSION:
            self.fail(rid, "version", f"protocol version {req.get('v')} not supported "
                                      f"(this worker speaks {PROTOCOL_VERSION})")
        elif op not in REQUESTS:
            self.fail(rid, "bad_request", f"unknown op {quote(op, 80)}; expected one of {', '.join(REQUESTS)}")
        elif rid is None:
            self.fail(None, "bad_request", f"{op} request without an id")
        elif op == "cancel":
            self.emit("result", id=rid, op="cancel", target=req.get("target"),
                      cancelled=self.cancel(req.get("target")))
        elif op == "shutdown":
            with self._state_lock:
                self._cancelled |= self._queued
            self.cancel(None)
            self._queue.put(_Shutdown("shutdown"))
        else:
            with self._state_lock:
                self._queued.add(rid)
            self._queue.put(req)

    def cancel(self, target: Any) -> bool:
        """Cancel the running request (target None or its id) or a queued one; whether anything matched."""
        with self._state_lock:
            if self._current is not None and target in (None, self._current):
                self._cancel_current.set()
                return True
            if target in self._queued:
                self._cancelled.add(target)
                return True
        return False

    # ------------------------------------------------------------------ request loop
    def serve_forever(self) -> str:
        """Serve queued requests until shutdown or end of input; returns the reason."""
        while True:
            req = self._queue.get()
            if isinstance(req, _Shutdown):
                return req.reason
            rid = req["id"]
            with self._state_lock:
                self._queued.discard(rid)
                if rid in self._cancelled:
                    self._cancelled.discard(rid)
                    self.fail(rid, "cancelled", f"{req['op']} cancelled before it started")
                    continue
                self._current = rid
                self._cancel_current.clear()
            try:
                getattr(self, f"_op_{req['op']}")(req)
            except BadRequest as exc:
                self.fail(rid, exc.kind, str(exc))
            except Exception as exc:  # a request must never take the worker down
                traceback.print_exc(file=sys.stderr)
                self.fail(rid, "runtime", f"{type(exc).__name__}: {exc}")
            finally:
                with self._state_lock:
                    self._current = None

    def _ids_of(self, req: dict, text_field: str, ids_field: str) -> list[int]:
        ids = req.get(ids_field)
        if ids is not None:
            if not isinstance(ids, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
                raise BadRequest(f"{ids_field} must be a list of integers")
            bad = [i for i in ids if not 0 <= i < self.model.cfg.vocab_size]
            if bad:
                raise BadRequest(f"{ids_field} has ids outside the vocabulary (0..{self.model.cfg.vocab_size - 1}):"
                                 f" {bad[:5]}")
            return list(ids)
        text = req.get(text_field, "")
        if not isinstance(text, str):
            raise BadRequest(f"{text_field} must be a string")
        return self.tok.encode(text)

    def _chat_ids(self, req: dict) -> list[int]:
        """`messages` ([{role, content}]) or `prompt` as one user message, in the checkpoint's chat template."""
        from core.chat import render_chat

        messages = req.get("messages")
        if messages is None:
            prompt = req.get("prompt", "")
            if not isinstance(prompt, str):
                raise BadRequest("prompt must be a string")
            messages = [{"role": "user", "content": prompt}]
        try:
            return self.tok.encode(render_chat(self.meta, messages))
        except UsageError as exc:
            raise BadRequest(str(exc)) from None

    def _op_tokenize(self, req: dict) -> None:
        ids = self._ids_of(req, "text", "token_ids")
        self.emit("result", id=req["id"], op="tokenize", token_ids=ids, tokens=self.tok.decode_pieces(ids))

    def _op_load(self, req: dict) -> None:
        try:
            path = resolve_checkpoint(req.get("checkpoint"), req.get("run"))
            info = self.load(path)
        except (UsageError, OSError, ValueError, KeyError, RuntimeError) as exc:
            raise BadRequest(f"cannot load {req.get('checkpoint') or req.get('run')}: {exc}", "load") from None
        self.emit("result", id=req["id"], op="load", **info)

    def _op_attention(self, req: dict) -> None:
        import io

        import numpy as np

        from core.generate import attention_maps

        ids = self._ids_of(req, "text", "token_ids")
        if not ids:
            raise BadRequest("attention needs a non-empty text")
        block = self.model.cfg.block_size
        truncated = len(ids) > block
        ids = ids[:block]
        probs = attention_maps(self.model, ids)  # [n_layer, n_head, T, T] float32
        self._files += 1
        path = os.path.join(self.scratch, f"attention-{os.getpid()}-{self._files}.npy")
        buf = io.BytesIO()
        np.save(buf, probs)
        atomic_write(path, buf.getvalue())  # the reader never sees half a file
        self.emit("result", id=req["id"], op="attention", path=path, shape=list(probs.shape),
                  tokens=self.tok.decode_pieces(ids), token_ids=ids, truncated=truncated)

    def _op_generate(self, req: dict) -> None:
        from core.generate import SampleParams, generate_steps

        rid = req["id"]
        top_k = _number(req, "top_k", int, None, 0, None, allow_none=True)
        p = SampleParams(
            max_new_tokens=_number(req, "max_new_tokens", int, 200, 0, MAX_NEW_TOKENS),
            temperature=_number(req, "temperature", float, 0.8, 0.0, 100.0),
            top_k=top_k or None,
            top_p=_number(req, "top_p", float, None, 0.0, 1.0, allow_none=True),
            repetition_penalty=_number(req, "repetition_penalty", float, 1.0, 0.01, 100.0),
            seed=_number(req, "seed", int, None, 0, 2**63 - 1, allow_none=True),
            top_alternatives=_number(req, "top_n", int, 5, 1, MAX_TOP_N))
        if p.top_p == 0.0:
            raise BadRequest("top_p must be in (0, 1]")
        stops = req.get("stop") or []
        if isinstance(stops, str):
            stops = [stops]
        if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
            raise BadRequest("stop must be a list of strings")
        stops = [s for s in stops if s]
        chat = bool(req.get("chat") or "messages" in req)
        prompt_ids = self._chat_ids(req) if chat else self._ids_of(req, "prompt", "prompt_ids")

        tok = self.tok
        stop_ids = generation_stop_ids(self.meta, tok, chat)
        longest_stop = max((len(s) for s in stops), default=0)
        text, token_ids, held = "", [], []
        stopped_by = "length"
        for index, step in enumerate(generate_steps(self.model, prompt_ids, p, self._cancel_current.is_set)):
            if step.token_id in stop_ids:
                stopped_by = "eos"
                break
            token_ids.append(step.token_id)
            # A character split across byte-level tokens is shown on the token that completes it.
            held.append(step.token_id)
            piece = tok.decode(held)
            if piece.endswith("\ufffd") and len(held) < 4:
                piece = ""
            else:
                held = []
            before = len(text)
            text += piece
            self.emit("token", id=rid, index=index, token_id=step.token_id, text=piece,
                      prob=step.model_prob, p_sample=step.prob,
                      top=[[tok.id_to_piece(t), t, pr] for t, pr in step.top])
            if stops and any(s in text[max(0, before - longest_stop + 1):] for s in stops):
                stopped_by = "stop_string"
                break
        if stopped_by == "length" and self._cancel_current.is_set() and len(token_ids) < p.max_new_tokens:
            stopped_by = "cancel"
        if held:
            text += tok.decode(held)
        self.emit("result", id=rid, op="generate", text=text, n_tokens=len(token_ids), token_ids=token_ids,
                  prompt_ids=prompt_ids, stopped_by=stopped_by)
