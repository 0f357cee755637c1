"""What the main window remembers between sessions (QSettings): geometry, splitters, the current tab,
the theme and the plot options. Kept apart from the window so the window only assembles.
"""

from __future__ import annotations

from studio.theme import current_theme
from studio.views.common.screen_fit import resize_to_fit

DEFAULT_SIZE = (1360, 860)


def default_geometry(window) -> None:
    """DEFAULT_SIZE where the screen has room for it, else as much of the screen as leaves a margin
    (studio.views.common.screen_fit), centred."""
    resize_to_fit(window, *DEFAULT_SIZE)
    room = window.screen().availableGeometry()
    window.move(room.x() + (room.width() - window.width()) // 2,
                room.y() + (room.height() - window.height()) // 2)


def restore_window(window) -> None:
    """Geometry and dock state, at construction."""
    s = window.settings
    geometry = s.bytes_value("window/geometry")
    if geometry is None or not window.restoreGeometry(geometry):
        default_geometry(window)
    state = s.bytes_value("window/state")
    if state is not None:
        window.restoreState(state)
    window.dark_action.setChecked(current_theme() == "dark")


def restore_panels(window, default_tab: int) -> None:
    """Splitters, plot options and the current tab, once the heavy panels exist."""
    s, plots = window.settings, window.training.plots
    for key, splitter in (("window/main_splitter", window.splitter),
                          ("window/training_splitter", window.training.splitter)):
        state = s.bytes_value(key)
        if state is not None:
            splitter.restoreState(state)
    plots.set_smoothing(s.value("plots/smoothing", 0.9, float))
    mode = s.value("plots/x_mode", "step", str)
    plots.set_x_mode(mode)
    if mode in window.x_actions:
        window.x_actions[mode].setChecked(True)
    log = s.value("plots/log_y", False, bool)
    plots.set_log_y(log)
    window.log_action.setChecked(log)
    window.tabs.setCurrentIndex(s.value("window/tab", default_tab, int))


def save_window(window) -> None:
    s = window.settings
    s.set_value("window/geometry", window.saveGeometry())
    s.set_value("window/state", window.saveState())
    s.set_value("window/main_splitter", window.splitter.saveState())
    s.set_value("window/tab", window.tabs.currentIndex())
    s.set_value("theme", current_theme())
    if window.training is not None:
        s.set_value("window/training_splitter", window.training.splitter.saveState())
        s.set_value("plots/smoothing", window.training.plots.smoothing())
        s.set_value("plots/x_mode", window.training.plots.x_mode)
        s.set_value("plots/log_y", window.training.plots.log_check.isChecked())
    s.sync()
