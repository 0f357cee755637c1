"""`llm-train serve` over a real subprocess: generate (streaming, stop strings, cancel), attention, tokenize,
load, bad requests, shutdown."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading

import numpy as np
import pytest
from engine_helpers import ROOT, write_config

from core import checkpoint as ckpt
from core.cli import main
from core.generate import SampleParams, attention_maps, generate_steps, load_model, load_tokenizer_for
from core.protocol import encode, make_request


class Serve:
    """A `llm-train serve` subprocess with a reader thread turning stdout lines into a queue of events."""

    def __init__(self, *args: str):
        env = {**os.environ, "PYTHONPATH": ROOT, "OMP_NUM_THREADS": "1"}
        self.proc = subprocess.Popen([sys.executable, "-m", "core", "serve", *args], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        self.events: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.events.put(json.loads(line))
        self.events.put(None)

    def send(self, op: str, rid, **fields) -> None:
        self.send_raw(encode(make_request(op, rid, **fields)))

    def send_raw(self, line: str) -> None:
        self.proc.stdin.write(line if line.endswith("\n") else line + "\n")
        self.proc.stdin.flush()

    def next(self, timeout: float = 60) -> dict | None:
        return self.events.get(timeout=timeout)

    def until(self, pred, timeout: float = 60) -> list[dict]:
        """Events up to and including the first one matching pred."""
        out = []
        while True:
            ev = self.next(timeout)
            assert ev is not None, f"worker exited; stderr: {self.proc.stderr.read()[-2000:]}"
            out.append(ev)
            if pred(ev):
                return out

    def reply(self, rid, timeout: float = 60) -> list[dict]:
        return self.until(lambda e: e.get("id") == rid and e["event"] in ("result", "error"), timeout)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            stream.close()


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, char_data) -> str:
    folder = tmp_path_factory.mktemp("serve")
    cfg = write_config(folder, char_data, model={"block_size": 48},
                       train={"max_steps": 40, "lr": 1e-2, "checkpoint_interval": 20})
    assert main(["train", "--config", cfg]) == 0
    return os.path.join(folder, "runs", "r")


@pytest.fixture(scope="module")
def worker(run_dir, tmp_path_factory):
    w = Serve("--run", run_dir, "--scratch", str(tmp_path_factory.mktemp("scratch")), "--device", "cpu")
    ready = w.next()
    assert ready["event"] == "ready", ready
    w.ready = ready
    yield w
    w.close()


@pytest.fixture(scope="module")
def local(run_dir):
    path = ckpt.latest_checkpoint(run_dir)
    model, meta = load_model(path)
    return model, load_tokenizer_for(path, meta)


def test_ready_describes_the_checkpoint(worker, run_dir, local):
    r = worker.ready
    assert r["v"] == 1 and r["step"] == 40 and r["checkpoint"] == os.path.abspath(ckpt.latest_checkpoint(run_dir))
    assert (r["n_layer"], r["n_head"], r["block_size"], r["vocab_size"]) == (2, 2, 48, local[0].cfg.vocab_size)


def test_tokenize(worker, local):
    worker.send("tokenize", "t1", text="add: 12")
    (res,) = worker.reply("t1")
    assert res["event"] == "result" and res["token_ids"] == local[1].encode("add: 12")
    assert "".join(res["tokens"]) == "add: 12"


def test_generate_streams_tokens_with_alternatives(worker, local):
    model, tok = local
    worker.send("generate", "g1", prompt="add: 1", max_new_tokens=20, temperature=0, top_n=5)
    events = worker.reply("g1")
    tokens, result = events[:-1], events[-1]
    assert [e["event"] for e in tokens] == ["token"] * 20 and [e["index"] for e in tokens] == list(range(20))
    assert result["event"] == "result" and result["op"] == "generate" and result["stopped_by"] == "length"
    assert result["n_tokens"] == 20 and result["text"] == "".join(e["text"] for e in tokens)
    expected = [s.token_id for s in generate_steps(model, tok.encode("add: 1"),
                                                   SampleParams(max_new_tokens=20, temperature=0.0))]
    assert [e["token_id"] for e in tokens] == expected == result["token_ids"]
    for e in tokens:
        probs = [p for _, _, p in e["top"]]
        assert len(e["top"]) == 5 and probs == sorted(probs, reverse=True)
        assert e["top"][0][1] == e["token_id"] and e["prob"] == pytest.approx(probs[0])
        assert all(text == tok.id_to_piece(i) for text, i, _ in e["top"])


def test_seeded_sampling_is_reproducible_across_requests(worker):
    outs = []
    for rid in ("s1", "s2"):
        worker.send("generate", rid, prompt="the ", max_new_tokens=30, temperature=1.0, top_k=10, seed=7)
        outs.append(worker.reply(rid)[-1]["text"])
    assert outs[0] == outs[1] and len(outs[0]) >= 30


def test_stop_string_ends_generation(worker):
    worker.send("generate", "p1", prompt="add: 1", max_new_tokens=40, temperature=0)
    full = worker.reply("p1")[-1]["text"]
    stop = full[6:8]
    worker.send("generate", "p2", prompt="add: 1", max_new_tokens=40, temperature=0, stop=[stop])
    res = worker.reply("p2")[-1]
    assert res["stopped_by"] == "stop_string" and stop in res["text"] and full.startswith(res["text"])
    assert stop not in res["text"][:-1] and res["n_tokens"] < 40


def test_cancel_stops_a_long_generation_and_the_worker_goes_on(worker):
    worker.send("generate", "c1", prompt="the ", max_new_tokens=100_000, temperature=1.0)
    worker.until(lambda e: e.get("id") == "c1" and e["event"] == "token")
    worker.send("cancel", "c2", target="c1")
    events = worker.reply("c1")
    cancel_ack = [e for e in events if e.get("id") == "c2"]
    assert cancel_ack and cancel_ack[0]["cancelled"] is True
    res = events[-1]
    assert res["stopped_by"] == "cancel" and 0 < res["n_tokens"] < 100_000
    worker.send("cancel", "c3", target="nothing-running")
    assert worker.reply("c3")[-1]["cancelled"] is False
    worker.send("tokenize", "c4", text="ok")
    assert worker.reply("c4")[-1]["event"] == "result"


def test_attention_comes_back_as_an_npy_file(worker, local):
    model, tok = local
    worker.send("attention", "a1", text="add: 12 + 7")
    res = worker.reply("a1")[-1]
    assert res["event"] == "result" and res["op"] == "attention" and res["path"].endswith(".npy")
    probs = np.load(res["path"])
    T = len(tok.encode("add: 12 + 7"))
    assert probs.shape == (2, 2, T, T) == tuple(res["shape"]) and probs.dtype == np.float32
    assert res["tokens"] == tok.decode_pieces(res["token_ids"]) and not res["truncated"]
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)
    assert (probs[..., np.triu_indices(T, 1)[0], np.triu_indices(T, 1)[1]] == 0).all()
    np.testing.assert_allclose(probs, attention_maps(model, res["token_ids"]), atol=1e-6)


def test_attention_of_a_long_text_is_cut_to_the_context(worker):
    worker.send("attention", "a2", text="x" * 100)
    res = worker.reply("a2")[-1]
    assert res["truncated"] is True and res["shape"][-1] == 48


def test_load_swaps_checkpoints_and_a_bad_load_keeps_the_old_one(worker, run_dir):
    first = dict(ckpt.list_checkpoints(run_dir))[20]
    worker.send("load", "l1", checkpoint=first)
    res = worker.reply("l1")[-1]
    assert res["event"] == "result" and res["step"] == 20 and res["checkpoint"] == os.path.abspath(first)
    worker.send("generate", "l2", prompt="a", max_new_tokens=3, temperature=0)
    assert worker.reply("l2")[-1]["n_tokens"] == 3
    worker.send("load", "l3", checkpoint=os.path.join(run_dir, "no-such-checkpoint"))
    err = worker.reply("l3")[-1]
    assert err["event"] == "error" and err["kind"] == "load" and "no-such-checkpoint" in err["message"]
    worker.send("load", "l4", run=run_dir)
    assert worker.reply("l4")[-1]["step"] == 40


@pytest.mark.parametrize("line,kind", [
    ("this is not json", "bad_request"),
    ('{"v": 1, "op": "explode", "id": "b1"}', "bad_request"),
    ('{"v": 1, "op": "generate"}', "bad_request"),
    ('{"v": 99, "op": "tokenize", "id": "b2", "text": "a"}', "version"),
    ('{"v": 1, "op": "generate", "id": "b3", "temperature": "hot"}', "bad_request"),
    ('{"v": 1, "op": "generate", "id": "b4", "top_p": 0}', "bad_request"),
    ('{"v": 1, "op": "generate", "id": "b5", "prompt_ids": [1, 99999]}', "bad_request"),
    ('{"v": 1, "op": "generate", "id": "b6", "stop": [3]}', "bad_request"),
    ('{"v": 1, "op": "attention", "id": "b7", "text": ""}', "bad_request"),
])
def test_bad_requests_get_an_error_and_the_worker_survives(worker, line, kind):
    worker.send_raw(line)
    err = worker.until(lambda e: e["event"] == "error")[-1]
    assert err["kind"] == kind and err["message"]
    worker.send("tokenize", "alive", text="a")
    assert worker.reply("alive")[-1]["event"] == "result"


def test_shutdown_and_end_of_input_exit_cleanly(run_dir):
    w = Serve("--run", run_dir)
    try:
        assert w.next()["event"] == "ready"
        w.send("shutdown", "x")
        assert w.until(lambda e: e["event"] == "stopped")[-1]["reason"] == "shutdown"
        assert w.proc.wait(30) == 0
    finally:
        w.close()
    w = Serve("--run", run_dir)
    try:
        assert w.next()["event"] == "ready"
        w.proc.stdin.close()
        assert w.until(lambda e: e["event"] == "stopped")[-1]["reason"] == "end of input"
        assert w.proc.wait(30) == 0
    finally:
        w.proc.stdin = open(os.devnull, "w")  # noqa: SIM115 - closed by close()
        w.close()


def test_an_unloadable_checkpoint_is_reported_with_exit_code_2(tmp_path):
    (tmp_path / "meta.json").write_text("{not json")
    w = Serve("--checkpoint", str(tmp_path))
    try:
        err = w.next()
        assert err["event"] == "error" and err["kind"] == "load" and str(tmp_path) in err["message"]
        assert w.proc.wait(30) == 2
    finally:
        w.close()
