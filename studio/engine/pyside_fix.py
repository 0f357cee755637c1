"""Work around a PySide6 refcount bug: SignalInstance.emit()/disconnect() return a bool they do not own.

Seen with PySide6 6.12.0 on Python 3.11 (where True/False are not immortal): every Python-side
`signal.emit(...)` drops one reference to True, so a GUI that streams thousands of events (and
pyqtgraph, which emits on every mouse move) eventually frees True itself and aborts with
"Fatal Python error: bool_dealloc". `apply()` probes the installed PySide6 once and, only when the
bug is present, wraps the two methods to take the missing reference. Harmless elsewhere.

A second bug of the same release cannot be patched here: a `Signal(dict)` or `Signal(list)` whose value
holds None drops a reference to None on every emit (the QVariant conversion). So the studio declares
such signals as `Signal(object)`, which passes the Python object through untouched.
"""

from __future__ import annotations

import ctypes
import sys

_applied = False


def _leaks(call) -> bool:
    before = sys.getrefcount(True) + sys.getrefcount(False)
    for _ in range(8):
        call()
    return sys.getrefcount(True) + sys.getrefcount(False) < before - 4


def apply() -> bool:
    """Install the workaround if this PySide6 needs it; returns whether it was installed."""
    global _applied
    if _applied:
        return True
    from PySide6.QtCore import QObject, Signal, SignalInstance

    class _Probe(QObject):
        fired = Signal(int)

    probe = _Probe()
    incref = ctypes.pythonapi.Py_IncRef
    incref.argtypes = [ctypes.py_object]
    incref.restype = None

    def slot(_value: int) -> None:
        pass

    def connect_disconnect() -> None:
        probe.fired.connect(slot)
        probe.fired.disconnect(slot)

    emit_leaks = _leaks(lambda: probe.fired.emit(1))
    disconnect_leaks = _leaks(connect_disconnect)
    if emit_leaks:
        original_emit = SignalInstance.emit

        def emit(self, *args):
            result = original_emit(self, *args)
            if isinstance(result, bool):
                incref(result)
            return result

        SignalInstance.emit = emit
    if disconnect_leaks:
        original_disconnect = SignalInstance.disconnect

        def disconnect(self, *args):
            result = original_disconnect(self, *args)
            if isinstance(result, bool):
                incref(result)
            return result

        SignalInstance.disconnect = disconnect
    _applied = True
    return emit_leaks or disconnect_leaks
