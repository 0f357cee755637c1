"""The demo workspace's examples/: instruction data, question/answer pairs and a held-out text in the demo
corpus's own characters, written once and never replaced, and filled in where they are for (Fine-tune,
Evaluate), so the whole tour works on a fresh install with nothing to download."""

from __future__ import annotations

import json
import os

from core import layout
from core.corpora import synthetic_text
from studio import demo
from studio.views.finetune.dialog import open_finetune
from studio.workspace.workspace import EXAMPLE_FILES, EXAMPLES
from tests.studio.helpers import open_window, write_checkpoint

CORPUS_CHARS = set("".join(synthetic_text(1337, i) for i in range(4)))  # the demo's @synthetic characters


def _paths(root: str) -> dict[str, str]:
    return {kind: os.path.join(root, EXAMPLES, name) for kind, name in EXAMPLE_FILES.items()}


def test_examples_are_valid_in_the_corpus_characters_and_never_replaced(tmp_path):
    from core.evaluate import read_pairs
    from core.sft import parse_line

    ws = demo.ensure_demo_workspace(str(tmp_path / "ws"))
    paths = _paths(ws.root)
    with open(paths["finetune"], encoding="utf-8") as fh:
        chats = [parse_line(line, f"line {n}") for n, line in enumerate(fh, 1)]
    pairs = read_pairs(paths["pairs"])
    with open(paths["text"], encoding="utf-8") as fh:
        text = fh.read()
    assert len(chats) == 2000 and len(pairs) == 60 and len(text) >= 16 << 10
    for (q, a) in [(c[0]["content"], c[1]["content"]) for c in chats] + pairs:
        task, word = q.split(": ")
        if task == "add":
            x, y = word.split("+")
            assert int(a) == int(x) + int(y)
        else:
            assert a == {"copy": word, "reverse": word[::-1], "sort": "".join(sorted(word))}[task]
        assert set(q + a) <= CORPUS_CHARS
    assert set(text) <= CORPUS_CHARS
    trained = {c[0]["content"] for c in chats}
    assert sum(q in trained for q, _ in pairs) <= 2  # held out (a short copy may repeat by chance)
    with open(paths["pairs"], "w", encoding="utf-8") as fh:  # the user's edit stays
        fh.write(json.dumps({"prompt": "copy: ab", "reference": "ab"}) + "\n")
    os.remove(paths["text"])
    demo.ensure_demo_workspace(ws.root)
    assert read_pairs(paths["pairs"]) == [("copy: ab", "ab")]
    with open(paths["text"], encoding="utf-8") as fh:
        assert fh.read() == text  # the same text again: seeded


def test_the_dialogs_fill_in_the_examples(qtbot, tmp_path):
    ws = demo.ensure_demo_workspace(str(tmp_path / "ws"))
    paths = _paths(ws.root)
    w = open_window(qtbot, ws.root)
    dialog = w.run_actions.evaluate.open_dialog()
    assert dialog.kind.currentData() == "text" and dialog.file.text() == paths["text"]
    dialog.set_kind("pairs")
    assert dialog.file.text() == paths["pairs"]
    dialog.set_kind("text")
    assert dialog.file.text() == paths["text"]
    # an instruction fine-tune (a chat template) is evaluated on the pairs it answers; a plain model on text
    chat, plain = (write_checkpoint(os.path.join(ws.runs_dir, name), 10) for name in ("ft", "plain"))
    meta = layout.read_json(os.path.join(chat, layout.META))
    layout.atomic_write_json(os.path.join(chat, layout.META), {**meta, "chat_template": "{{ messages }}"})
    assert dialog.picker.set_checkpoint(chat)
    assert dialog.kind.currentData() == "pairs" and dialog.file.text() == paths["pairs"]
    assert dialog.picker.set_checkpoint(plain)
    assert dialog.kind.currentData() == "text" and dialog.file.text() == paths["text"]
    own = str(tmp_path / "mine.txt")
    dialog.file.setText(own)
    dialog.set_kind("pairs")
    assert dialog.file.text() == own  # a file of one's own is never swapped
    dialog.picker.set_checkpoint(chat)
    assert dialog.file.text() == own and dialog.kind.currentData() == "pairs"
    finetune = open_finetune(w)
    assert finetune.data_file.text() == paths["finetune"]
