"""Issue 14, items 2 and 14 (serve side): requests the worker cannot handle get an error reply, the reader
thread never dies, end of input ends the worker, odd numbers are bad requests, replies keep surrogates."""

from __future__ import annotations

import io
import json

from core.serve import Worker, _Shutdown


class _Tok:
    """Just enough tokenizer for `tokenize`: one id per character."""

    eot_id = None

    def encode(self, text):
        return [ord(c) % 50 for c in text]

    def decode_pieces(self, ids):
        return [chr(i + 65) for i in ids]


class _Cfg:
    vocab_size = 50


class _Model:
    cfg = _Cfg()


def _worker() -> tuple[Worker, io.StringIO]:
    out = io.StringIO()
    w = Worker("cpu", "/nonexistent-scratch", out=out)
    w.tok, w.model, w.meta = _Tok(), _Model(), {"step": 1}
    return w, out


def _run(lines: list[str]) -> list[dict]:
    """Feed lines to the reader (as stdin would), serve until it stops, return every reply."""
    w, out = _worker()
    w.read_requests(io.StringIO("".join(line + "\n" for line in lines)))
    reason = w.serve_forever()
    assert reason == "end of input"
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_object_or_array_id_is_answered_and_the_reader_goes_on():
    # The repro: the stdin thread died on "unhashable type: 'dict'" and nothing answered after it.
    events = _run(['{"v":1,"op":"tokenize","id":{"a":1},"text":"hi"}',
                   '{"v":1,"op":"tokenize","id":[1,2],"text":"hi"}',
                   '{"v":1,"op":"tokenize","id":"x","text":"hi"}'])
    errors = [e for e in events if e["event"] == "error"]
    assert len(errors) == 2 and all(e["kind"] == "bad_request" and "id" in e["message"] for e in errors)
    results = [e for e in events if e["event"] == "result"]
    assert [r["id"] for r in results] == ["x"] and results[0]["token_ids"] == [ord("h") % 50, ord("i") % 50]


def test_cancel_with_unhashable_target_does_not_kill_the_reader():
    events = _run(['{"v":1,"op":"cancel","id":"c","target":{"x":[1]}}',
                   '{"v":1,"op":"tokenize","id":"y","text":"a"}'])
    assert any(e["event"] == "result" and e["id"] == "y" for e in events)
    assert any(e.get("id") in ("c", None) for e in events)


def test_end_of_input_ends_the_worker():
    w, _ = _worker()
    w.read_requests(io.StringIO(""))
    assert isinstance(w._queue.get(timeout=5), _Shutdown)


def test_nan_temperature_and_huge_max_new_tokens_are_bad_requests():
    events = _run(['{"v":1,"op":"generate","id":"a","prompt":"x","temperature":NaN}',
                   '{"v":1,"op":"generate","id":"b","prompt":"x","max_new_tokens":1e400}',
                   '{"v":1,"op":"generate","id":"c","prompt":"x","seed":1e400}'])
    kinds = {e["id"]: e["kind"] for e in events if e["event"] == "error"}
    assert kinds == {"a": "bad_request", "b": "bad_request", "c": "bad_request"}


def test_reply_with_a_lone_surrogate_is_sent_escaped_not_dropped():
    w, _ = _worker()

    class _Strict(io.StringIO):
        def write(self, text):  # a UTF-8 stdout refuses lone surrogates
            text.encode("utf-8")
            return super().write(text)

    w.out = _Strict()
    w.emit("result", id="s", op="tokenize", tokens=["\ud800"])
    line = w.out.getvalue()
    assert line and json.loads(line)["tokens"] == ["\ud800"]
