"""LLM Training Studio: the PySide6 desktop GUI (never imports torch; the engine runs in subprocesses)."""
