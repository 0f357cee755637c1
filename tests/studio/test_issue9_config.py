"""Issue 9, the Config tab: estimates follow the data folder (the demo's background prepare), and time
per step / total time are estimated before Start from runs measured on this machine."""

from __future__ import annotations

import os

import pytest

from studio import demo
from studio.main_window import MainWindow
from studio.settings import Settings
from tests.studio.helpers import write_finished_run


@pytest.fixture
def window(qtbot):
    def make(workspace_root: str | None = None) -> MainWindow:
        w = MainWindow(Settings())
        w.close_policy = "stop"
        qtbot.addWidget(w)
        w.show()
        w.ensure_panels()
        if workspace_root:
            w.open_workspace(workspace_root)
        return w

    return make


def test_estimates_refresh_when_the_demo_data_is_prepared_in_the_background(qtbot, window, fake_engine):
    ws = demo.ensure_demo_workspace()
    assert not demo.demo_data_ready(ws)
    w = window()
    with qtbot.waitSignal(w.session.data_changed, timeout=20000):
        w.open_workspace(ws.root)
        assert "no meta.json" in w.config_editor.estimates.note.text()  # prepared in the background
    assert demo.demo_data_ready(ws)
    est = w.config_editor.estimates
    assert est.values["vocab"].text() == "65 (data)" and "no meta.json" not in est.note.text()
