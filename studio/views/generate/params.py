"""GenerationParams: the sampling settings people expect, as a compact form that yields a request dict."""

from __future__ import annotations

from PySide6.QtWidgets import QDoubleSpinBox, QFormLayout, QLineEdit, QSpinBox, QWidget

RANDOM_SEED = -1


def parse_stops(text: str) -> list[str]:
    """'\\n\\n, END' -> ['\\n\\n', 'END']: comma separated, with \\n, \\t and \\, escapes."""
    out, cur, i = [], "", 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            cur += {"n": "\n", "t": "\t", ",": ",", "\\": "\\"}.get(text[i + 1], "\\" + text[i + 1])
            i += 2
            continue
        if c == ",":
            out.append(cur.strip(" "))
            cur = ""
        else:
            cur += c
        i += 1
    out.append(cur.strip(" "))
    return [s for s in out if s]


def format_stops(stops: list[str]) -> str:
    return ", ".join(s.replace("\\", "\\\\").replace(",", "\\,").replace("\n", "\\n").replace("\t", "\\t")
                     for s in stops)


class GenerationParams(QWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.max_new_tokens = QSpinBox()
        self.max_new_tokens.setRange(1, 100_000)
        self.max_new_tokens.setValue(200)
        self.max_new_tokens.setToolTip("How many tokens to generate at most")
        self.temperature = QDoubleSpinBox()
        self.temperature.setRange(0.0, 5.0)
        self.temperature.setSingleStep(0.05)
        self.temperature.setValue(0.8)
        self.temperature.setToolTip("Divides the logits: lower is more conservative; 0 is greedy")
        self.top_k = QSpinBox()
        self.top_k.setRange(0, 1_000_000)
        self.top_k.setSpecialValueText("off")
        self.top_k.setToolTip("Sample only among the k most likely tokens (0: off)")
        self.top_p = QDoubleSpinBox()
        self.top_p.setRange(0.01, 1.0)
        self.top_p.setSingleStep(0.05)
        self.top_p.setValue(1.0)
        self.top_p.setToolTip("Nucleus sampling: the smallest set of tokens whose probability reaches p "
                              "(1: off)")
        self.repetition_penalty = QDoubleSpinBox()
        self.repetition_penalty.setRange(0.5, 3.0)
        self.repetition_penalty.setSingleStep(0.05)
        self.repetition_penalty.setValue(1.0)
        self.repetition_penalty.setToolTip("Above 1 makes tokens already seen less likely (CTRL-style)")
        self.seed = QSpinBox()
        self.seed.setRange(RANDOM_SEED, 2**31 - 1)
        self.seed.setValue(RANDOM_SEED)
        self.seed.setSpecialValueText("random")
        self.seed.setToolTip("Same seed, same settings, same checkpoint: the same text")
        self.stop = QLineEdit()
        self.stop.setPlaceholderText(r"e.g. \n\n, THE END")
        self.stop.setToolTip(r"Stop strings, comma separated (\n newline, \t tab, \, comma)")
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("Max new tokens", self.max_new_tokens)
        form.addRow("Temperature", self.temperature)
        form.addRow("Top-k", self.top_k)
        form.addRow("Top-p", self.top_p)
        form.addRow("Repetition penalty", self.repetition_penalty)
        form.addRow("Seed", self.seed)
        form.addRow("Stop strings", self.stop)

    def values(self) -> dict:
        """The request fields of `generate` (see core.serve)."""
        return {"max_new_tokens": self.max_new_tokens.value(), "temperature": round(self.temperature.value(), 4),
                "top_k": self.top_k.value() or None,
                "top_p": None if self.top_p.value() >= 1.0 else round(self.top_p.value(), 4),
                "repetition_penalty": round(self.repetition_penalty.value(), 4),
                "seed": None if self.seed.value() == RANDOM_SEED else self.seed.value(),
                "stop": parse_stops(self.stop.text())}

    def set_values(self, v: dict) -> None:
        self.max_new_tokens.setValue(int(v.get("max_new_tokens", 200)))
        self.temperature.setValue(float(v.get("temperature", 0.8)))
        self.top_k.setValue(int(v.get("top_k") or 0))
        self.top_p.setValue(float(v.get("top_p") or 1.0))
        self.repetition_penalty.setValue(float(v.get("repetition_penalty", 1.0)))
        seed = v.get("seed")
        self.seed.setValue(RANDOM_SEED if seed is None else int(seed))
        self.stop.setText(format_stops(list(v.get("stop") or [])))
