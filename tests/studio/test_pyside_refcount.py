"""Guards the PySide6 pin: the installed binding must not leak references on signal emits.

PySide6 6.12.0 drops a reference to True on every `emit()` and to None on every `Signal(dict)` emit
holding None; a studio streaming events then aborts with "bool_dealloc". pyproject pins below it.
"""

import sys

from PySide6.QtCore import QObject, Signal


class _Emitter(QObject):
    number = Signal(int)
    mapping = Signal(dict)


def test_signal_emits_keep_reference_counts():
    e = _Emitter()
    e.number.connect(lambda v: None)
    e.mapping.connect(lambda v: None)
    true_before, none_before = sys.getrefcount(True), sys.getrefcount(None)
    for i in range(200):  # few enough not to abort even on a leaking build
        e.number.emit(i)
        e.mapping.emit({"x": None})
    assert true_before - sys.getrefcount(True) < 50
    assert none_before - sys.getrefcount(None) < 50
