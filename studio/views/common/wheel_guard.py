"""guard_wheel: the mouse wheel over a form scrolls the form, not the value under the pointer.

A combo box or spin box takes wheel events wherever the pointer happens to be, so scrolling down the Config
tab's form (which saves every edit as it is made) changed model.activation from gelu to swiglu on the way.
Guarded, such a field takes the wheel only once it has the keyboard focus (clicked or tabbed into); before,
the event goes to its parents, and the scroll area holding the form scrolls.
"""

from __future__ import annotations

from PySide6.QtCore import QCoreApplication, QEvent, QObject, Qt
from PySide6.QtWidgets import QAbstractScrollArea, QAbstractSpinBox, QComboBox, QWidget


class _WheelGuard(QObject):
    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt override)
        if event.type() == QEvent.Type.Wheel and isinstance(obj, QWidget) and not obj.hasFocus():
            area = obj.parentWidget()
            while area is not None and not isinstance(area, QAbstractScrollArea):
                area = area.parentWidget()
            if area is not None:  # the scroll area holding the form scrolls instead (Qt does not pass a
                QCoreApplication.sendEvent(area.viewport(), event)  # wheel event on to the parents itself)
            return True
        return False


def guard_wheel(root: QWidget) -> None:
    """Guard every combo box and spin box under `root` (call once its fields exist)."""
    guard = _WheelGuard(root)
    for widget in root.findChildren(QComboBox) + root.findChildren(QAbstractSpinBox):
        widget.setFocusPolicy(Qt.FocusPolicy.StrongFocus)  # the wheel does not give it the focus either
        widget.installEventFilter(guard)
