"""The Generate and Attention controllers without their views, against a real inference worker
(`llm-train serve`) on the tiny trained checkpoint: shared workers and reply routing, branching and the
token budget, history on disk, attention replies and snapshots, exports."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from studio.controllers.attention import AttentionSession
from studio.controllers.generation import GenerationSession
from studio.controllers.generation_history import MAX_ENTRIES, GenerationHistory
from tests.studio import test_generation_panel
from tests.studio.test_generation_panel import WAIT_MS, ckpt

tiny_ws = test_generation_panel.tiny_ws  # the tiny trained workspace (a session fixture)

GREEDY = {"max_new_tokens": 10, "temperature": 0.0, "top_k": None, "top_p": None, "repetition_penalty": 1.0,
          "seed": None, "stop": []}


@pytest.fixture
def generation(qtbot, tmp_path):
    session = GenerationSession()
    session.set_workspace(str(tmp_path))
    yield session
    session.shutdown(wait_ms=5000)
    session.pool.shutdown(wait_ms=5000)


@pytest.fixture
def attention(qtbot):
    session = AttentionSession()
    yield session
    session.shutdown(wait_ms=5000)
    session.pool.shutdown(wait_ms=5000)


def test_two_sides_share_one_worker_and_each_gets_only_its_own_tokens(qtbot, generation, tiny_ws, tmp_path):
    seen = {"A": [], "B": []}
    generation.token_received.connect(lambda side, ev: seen[side].append(ev["index"]))
    checkpoint = ckpt(tiny_ws, 40)
    with qtbot.waitSignal(generation.generation_finished, timeout=WAIT_MS) as blocker:
        assert generation.generate("add: 3", GREEDY, {"A": checkpoint, "B": checkpoint})
    assert generation.sides["A"].worker is generation.sides["B"].worker and len(generation.pool.workers()) == 1
    assert seen == {"A": list(range(10)), "B": list(range(10))}  # no side saw the other's replies
    a, b = blocker.args[0]["outputs"]
    assert a["text"] == b["text"] and a["n_tokens"] == b["n_tokens"] == 10  # greedy: the same text
    saved = json.loads((tmp_path / "generation_history.json").read_text(encoding="utf-8"))
    assert saved["entries"][0]["prompt"] == "add: 3" and saved["entries"][0]["params"] == GREEDY
    assert GenerationHistory(str(tmp_path)).entries == generation.history.entries


def test_branching_keeps_the_budget_and_greedy_continuation_reproduces_the_text(qtbot, generation, tiny_ws):
    with qtbot.waitSignal(generation.generation_finished, timeout=WAIT_MS):
        generation.generate("add: 4", GREEDY, {"A": ckpt(tiny_ws, 40)})
    side = generation.side("A")
    first = [t["token_id"] for t in side.tokens]
    text = side.output_text()
    # Continuing from the token greedy decoding chose anyway gives the same text back: the continuation
    # starts from the prompt's ids plus the kept tokens, with the rest of the 10-token budget.
    with qtbot.waitSignal(generation.generation_finished, timeout=WAIT_MS):
        assert generation.pick_alternative("A", 3, first[3])
    assert [t["token_id"] for t in side.tokens] == first and side.output_text() == text
    assert [t["index"] for t in side.tokens[4:]] == list(range(4, 10))
    # Picking at the last token leaves no budget: no request, the output ends there.
    alt = side.tokens[9]["top"][1]
    before = "".join(t["text"] for t in side.tokens[:9])
    assert generation.pick_alternative("A", 9, alt[1])
    assert not generation.is_busy() and side.result["n_tokens"] == 10 and side.tokens[9]["token_id"] == alt[1]
    assert side.output_text() == side.result["text"] == before + alt[0] and side.tokens[9]["picked"]
    assert not generation.pick_alternative("A", 12, alt[1])  # past the end: refused


def test_a_missing_checkpoint_is_reported_and_nothing_starts(generation):
    messages = []
    generation.status_changed.connect(lambda text, error: messages.append((text, error)))
    assert not generation.generate("x", GREEDY, {"A": ""})
    assert messages == [("Pick a checkpoint first.", True)] and not generation.is_busy()
    assert generation.pool.workers() == []


def test_attention_reply_is_read_and_its_file_removed_then_exported(qtbot, attention, tiny_ws, tmp_path):
    replies = []
    attention.link.result_received.connect(replies.append)
    with qtbot.waitSignal(attention.loaded, timeout=WAIT_MS) as blocker:
        assert attention.compute(ckpt(tiny_ws, 20), "abcd")
    data = blocker.args[0]
    assert data is attention.data and data.probs.shape == (2, 2, 4, 4) and data.tokens == list("abcd")
    np.testing.assert_allclose(data.probs.sum(-1), 1.0, atol=1e-5)
    assert replies and not os.path.exists(replies[0]["path"])  # the worker's .npy is not left behind
    attention.export("csv", str(tmp_path / "m.csv"), data.probs[0, 0], data.tokens)
    attention.export("npy", str(tmp_path / "m"), data.probs[0, 0], data.tokens)  # .npy added, as np.save
    attention.export("all", str(tmp_path / "all.npy"), data.probs[0, 0], data.tokens)
    assert (tmp_path / "m.csv").read_text(encoding="utf-8").splitlines()[0] == "from \\ to,0:a,1:b,2:c,3:d"
    np.testing.assert_array_equal(np.load(tmp_path / "m.npy"), data.probs[0, 0])
    np.testing.assert_array_equal(np.load(tmp_path / "all.npy"), data.probs)


def test_attention_session_follows_the_checkpoints_run_snapshots(qtbot, attention, tiny_ws):
    with qtbot.waitSignal(attention.snapshots_changed, timeout=5000) as blocker:
        attention.follow_checkpoint(ckpt(tiny_ws, 40))
    assert [step for step, _path in blocker.args[0]] == [10, 20, 30, 40]
    with qtbot.waitSignal(attention.loaded, timeout=5000) as loaded:
        attention.load_snapshot(1)
    assert loaded.args[0].label.endswith("step 20") and loaded.args[0].probs.shape[:2] == (2, 2)
    with qtbot.assertNotEmitted(attention.loaded):
        attention.load_snapshot(1)  # already shown: not read again


def test_history_keeps_the_newest_entries_and_survives_a_damaged_file(tmp_path):
    (tmp_path / "generation_history.json").write_text("{not json", encoding="utf-8")
    history = GenerationHistory(str(tmp_path))
    assert history.entries == []
    for i in range(MAX_ENTRIES + 3):
        history.add(f"p{i}", {}, [])
    again = GenerationHistory(str(tmp_path))
    assert len(again.entries) == MAX_ENTRIES and again.entries[0]["prompt"] == f"p{MAX_ENTRIES + 2}"
    assert [n for n in os.listdir(tmp_path) if n != "generation_history.json"] == []  # no temp file left


def test_a_hand_edited_history_shows_without_an_exception(qtbot, tmp_path):
    """Nulls and wrong types where paths and texts belong (the history list raised a TypeError on a null
    checkpoint): the entries come in with empty strings there, and the list shows them."""
    from studio.views.generate.history import HistoryList

    (tmp_path / "generation_history.json").write_text(json.dumps({"entries": [
        {"prompt": None, "outputs": [{"checkpoint": None, "text": 3}, "junk"]},
        {"kind": "chat", "prompt": "hi", "checkpoint": 7, "messages": []},
        {"prompt": "ok", "outputs": {"not": "a list"}}, "junk"]}), encoding="utf-8")
    history = GenerationHistory(str(tmp_path))
    assert [e["outputs"] for e in history.entries] == [[{"checkpoint": "", "text": ""}], [], []]
    assert history.entries[1]["checkpoint"] == "" and history.entries[0]["prompt"] == ""
    shown = HistoryList()
    qtbot.addWidget(shown)
    shown.show_entries(history.entries)
    assert shown.count() == 3 and shown.item(2).text().startswith("ok\n")
