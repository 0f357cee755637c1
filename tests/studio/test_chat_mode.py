"""The Generate tab's chat mode on an imported model (a tiny Llama with GQA and a chat template, built
offline with transformers and imported with the real engine): offered only where the checkpoint has a
template; a reply streams from a real `serve` worker with token probabilities; every turn sends the whole
conversation; New chat starts over. And the attention panel on the same model shows every query head."""

from __future__ import annotations

import os

import pytest
from PySide6.QtCore import Qt

from core import layout
from studio.controllers.chat import has_chat_template
from studio.views.generate.output import prob_color
from tests.studio.helpers import open_window, select_run, write_finished_run

WAIT_MS = 120_000


@pytest.fixture
def imported(qtbot, tmp_path) -> str:
    """A workspace whose run "tiny-llama" is an imported HF Llama (4 query heads, 2 kv heads, a chat
    template), brought in as File → Import Model… does, and whose run "plain" is one of ours (no template)."""
    import torch

    from studio.controllers.import_job import ImportJob
    from studio.workspace.workspace import Workspace
    from tests.core.interop_models import tiny_hf_model
    from tests.studio.conftest import TINY_CONFIG

    torch.manual_seed(0)  # the same weights every run: with a sampling seed, the same replies
    tiny_hf_model("llama", str(tmp_path / "hf"))
    ws = Workspace.create(str(tmp_path / "ws"))
    job = ImportJob()
    with qtbot.waitSignal(job.finished, timeout=WAIT_MS) as done:
        assert job.start(str(tmp_path / "hf"), os.path.join(ws.runs_dir, "tiny-llama"))
    assert done.args[0].ok, done.args[0].failure
    write_finished_run(ws.create_run("plain", TINY_CONFIG).dir)
    return ws.root


@pytest.fixture
def chat_window(qtbot, imported):
    return open_window(qtbot, imported, size=(1360, 860))  # closing it ends its workers


def _chat_mode(qtbot, w, max_new_tokens: int):
    """The Generate tab in chat mode on the imported model, replies at most `max_new_tokens` long."""
    select_run(w, "tiny-llama")
    w.show_tab("generate")
    panel = w.generation
    qtbot.waitUntil(panel.chat_mode.isEnabled, timeout=3000)
    panel.chat_mode.setChecked(True)
    panel.params.max_new_tokens.setValue(max_new_tokens)
    return panel


def test_chat_is_offered_only_for_a_checkpoint_with_a_template(qtbot, chat_window, imported):
    w = chat_window
    select_run(w, "plain")
    w.show_tab("generate")
    assert not has_chat_template(w.generation.sides["A"].picker.checkpoint())
    assert not w.generation.chat_mode.isEnabled() and "no chat template" in w.generation.chat_mode.toolTip()
    select_run(w, "tiny-llama")  # a model with a chat template opens in chat mode
    qtbot.waitUntil(w.generation.chat_mode.isChecked, timeout=3000)
    assert w.generation.modes.currentWidget() is w.generation.chat_pane
    w.generation.chat_mode.setChecked(False)  # the user's completion mode stays while the checkpoint does
    w.generation._update_chat_mode()
    assert not w.generation.chat_mode.isChecked() and w.generation.chat_mode.isEnabled()
    select_run(w, "plain")  # a checkpoint without a template leaves chat mode
    qtbot.waitUntil(lambda: not w.generation.chat_mode.isEnabled(), timeout=3000)
    assert w.generation.modes.currentIndex() == 0
    select_run(w, "tiny-llama")
    qtbot.waitUntil(w.generation.chat_mode.isChecked, timeout=3000)


def test_a_two_turn_conversation_streams_from_the_real_worker(qtbot, chat_window):
    w = chat_window
    panel = _chat_mode(qtbot, w, max_new_tokens=6)
    panel.params.temperature.setValue(0.0)
    pane, chat = panel.chat_pane, panel.chat
    sent = []
    real_request = chat.link.request
    chat.link.request = lambda checkpoint, op, **fields: sent.append(fields) or real_request(checkpoint, op, **fields)
    pane.system.setText("Be brief.")
    qtbot.keyClicks(pane.message, "hello there")
    with qtbot.waitSignal(chat.reply_finished, timeout=WAIT_MS) as first:
        qtbot.keyClick(pane.message, Qt.Key.Key_Return)  # Enter sends
    assert pane.message.toPlainText() == ""
    reply = chat.turns[-1]
    assert reply.role == "assistant" and reply.tokens and reply.content == first.args[0]["text"]
    assert all(0.0 <= t["prob"] <= 1.0 and t["top"] for t in reply.tokens)  # probabilities and alternatives
    assert len(pane.conversation.tokens) == len(reply.tokens)
    out = pane.conversation  # the reply's tokens carry completion mode's hover: probability and alternatives
    i = next(i for i, t in enumerate(reply.tokens) if t["text"])
    cursor = out.textCursor()
    cursor.setPosition(out._starts[i] + 1)
    assert cursor.charFormat().anchorHref() == f"tok:{i}"
    assert cursor.charFormat().background().color() == prob_color(reply.tokens[i]["prob"])
    assert out.tooltip_html(i).count("<tr") == len(reply.tokens[i]["top"])
    text = pane.conversation.toPlainText()
    assert "You\nhello there" in text and "Assistant\n" in text
    assert sent[0]["messages"] == [{"role": "system", "content": "Be brief."},
                                   {"role": "user", "content": "hello there"}]

    pane.message.setPlainText("and again")
    with qtbot.waitSignal(chat.reply_finished, timeout=WAIT_MS):
        pane.send_button.click()
    assert sent[1]["messages"][1:] == [{"role": "user", "content": "hello there"},
                                       {"role": "assistant", "content": reply.content},
                                       {"role": "user", "content": "and again"}]
    assert [t.role for t in chat.turns] == ["user", "assistant", "user", "assistant"]
    assert "You\nand again" in pane.conversation.toPlainText()
    panel.grab().save(os.path.join(os.environ.get("CHAT_SHOT_DIR", str(w.session.workspace.root)), "chat.png"))

    pane.new_button.click()  # New chat: the conversation starts over, the system prompt stays
    assert chat.turns == [] and pane.conversation.toPlainText() == "" and pane.system.text() == "Be brief."
    assert chat.messages() == [{"role": "system", "content": "Be brief."}]


def test_stop_ends_the_reply_and_keeps_what_it_got(qtbot, chat_window):
    w = chat_window
    panel = _chat_mode(qtbot, w, max_new_tokens=40)
    pane, chat = panel.chat_pane, panel.chat
    cancelled = []
    real_cancel = chat.link.cancel
    chat.link.cancel = lambda rid: cancelled.append(rid) or real_cancel(rid)
    # Seeded (weights and sampling): unseeded, a reply whose first sample was a stop token ended with no
    # token at all, and the wait for its first token below timed out (one fresh-clone run in a few hundred)
    panel.params.seed.setValue(7)
    pane.message.setPlainText("tell me a long story")
    with qtbot.waitSignal(chat.token_received, timeout=WAIT_MS):
        pane.send_button.click()
    rid = chat.rid
    assert pane.stop_button.isEnabled() and not pane.send_button.isEnabled()
    with qtbot.waitSignal(chat.reply_finished, timeout=WAIT_MS) as done:
        pane.stop_button.click()
    assert cancelled == [rid]  # Stop cancels this reply in the worker
    assert not chat.is_busy() and pane.send_button.isEnabled() and not pane.stop_button.isEnabled()
    reply = chat.turns[-1]  # the reply is kept as far as it got (all of it if it ended before the cancel)
    assert reply.role == "assistant" and reply.content == done.args[0]["text"]
    assert len(reply.tokens) == done.args[0]["n_tokens"] == len(pane.conversation.tokens)


def test_conversations_are_kept_in_the_history_and_go_on_where_they_were(qtbot, chat_window, imported):
    """Each conversation is one history entry ("Chat:", its message count), rewritten after each reply and kept in
    the workspace; a click on it puts it back, system prompt included, and the next message continues it."""
    from studio.controllers.generation_history import GenerationHistory

    w = chat_window
    panel = _chat_mode(qtbot, w, max_new_tokens=4)
    panel.params.seed.setValue(3)
    pane, chat, history = panel.chat_pane, panel.chat, panel.history_list

    def say(text: str) -> None:
        pane.message.setPlainText(text)
        with qtbot.waitSignal(chat.reply_finished, timeout=WAIT_MS):
            pane.send_button.click()

    pane.system.setText("Be kind.")
    say("first question")
    say("second question")
    assert history.count() == 1 and "Chat: first question" in history.item(0).text()
    assert "4 messages" in history.item(0).text()
    first_text = pane.conversation.toPlainText()
    pane.new_button.click()
    pane.system.setText("")
    say("another topic")
    assert history.count() == 2 and "Chat: another topic" in history.item(0).text()
    saved = GenerationHistory(imported).entries  # on disk, for the next session
    assert [len(e["messages"]) for e in saved] == [2, 4] and saved[1]["system"] == "Be kind."

    history.itemClicked.emit(history.item(1))  # back to the first conversation
    assert [t.content for t in chat.turns][::2] == ["first question", "second question"]
    assert pane.system.text() == "Be kind." and pane.conversation.toPlainText() == first_text
    assert "from the history (4 messages)" in pane.status.text()
    say("third question")  # goes on under the same entry, now the newest
    assert history.count() == 2 and "Chat: first question" in history.item(0).text()
    assert "6 messages" in history.item(0).text()
    entry = GenerationHistory(imported).entries[0]
    assert [m["content"] for m in entry["messages"]][::2] == ["first question", "second question", "third question"]
    # a conversation whose checkpoint has gone since: shown, and it goes on with the chat checkpoint picked
    history.show_entries([dict(entry, checkpoint=os.path.join(imported, "runs", "gone", "checkpoints",
                                                              "step-000001"))])
    history.itemClicked.emit(history.item(0))
    assert "checkpoint is gone" in pane.status.text() and "goes on with tiny-llama" in pane.status.text()
    assert len(chat.turns) == 6


def test_attention_on_an_imported_gqa_model_shows_every_query_head(qtbot, chat_window, imported):
    w = chat_window
    select_run(w, "tiny-llama")
    checkpoint = layout.latest_checkpoint(os.path.join(imported, "runs", "tiny-llama"))
    w.show_tab("attention")
    panel = w.attention
    with qtbot.waitSignal(panel.attention_loaded, timeout=WAIT_MS):
        panel.inspect(checkpoint, "hello world")
    model = layout.read_checkpoint_meta(checkpoint)["config"]["model"]
    assert model["n_kv_head"] < model["n_head"]  # a grouped-query model: fewer key/value heads are stored
    n_layer, n_head = panel.data.probs.shape[:2]
    assert (n_layer, n_head) == (model["n_layer"], model["n_head"])  # every query head, not one per kv head
    assert len(panel.grid.buttons) == n_layer * n_head
    heads = [panel.data.probs[0, h] for h in range(n_head)]
    assert any(abs(heads[0] - heads[h]).max() > 1e-6 for h in range(1, n_head))  # not one map repeated
    qtbot.wait(300)  # let the thumbnails lay out before the picture
    panel.grab().save(os.path.join(os.environ.get("CHAT_SHOT_DIR", imported), "attention-imported.png"))
