"""How a token piece is written as a label (menus, axes, tooltips, CSV headers). Pure Python, no Qt."""

from __future__ import annotations


def visible(piece: str) -> str:
    """A token as a label: whitespace made visible, control characters escaped, the empty piece as ∅."""
    out = piece.replace(" ", "␣").replace("\n", "⏎").replace("\t", "⇥").replace("\r", "␍")
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in out) or "∅"
