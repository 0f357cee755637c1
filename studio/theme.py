"""Light and dark palettes (Fusion style) and the matching plot colours."""

from __future__ import annotations

import os

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

THEMES = ("light", "dark")

# Plot colours per theme: background, axes/text, grid, and the series (colour-blind friendly order).
PLOT = {
    "light": {"background": "#ffffff", "foreground": "#3c4043", "grid": 0.25,
              "raw": "#9ecae9", "smooth": "#1f77b4", "val": "#d62728", "best": "#d62728",
              "lr": "#2ca02c", "grad": "#9467bd", "clip": "#ff7f0e", "speed": "#8c564b",
              "parent": "#9a9a9a", "cursor": "#888888",
              "overlay": ["#17becf", "#bcbd22", "#e377c2", "#7f7f7f", "#ff7f0e", "#2ca02c"]},
    "dark": {"background": "#1e1f22", "foreground": "#c9ccd1", "grid": 0.18,
             "raw": "#3d5a80", "smooth": "#62a8ea", "val": "#f47067", "best": "#ff938a",
             "lr": "#57ab5a", "grad": "#b083f0", "clip": "#e0a048", "speed": "#c69026",
             "parent": "#7d8590", "cursor": "#8b949e",
             "overlay": ["#39c5cf", "#d4d45a", "#ec8ec8", "#adbac7", "#f69d50", "#8ddb8c"]},
}

STATUS_COLORS = {
    "light": {"running": "#1a73e8", "done": "#188038", "stopped": "#b06000", "failed": "#d93025",
              "new": "#5f6368", "imported": "#8430ce"},
    "dark": {"running": "#62a8ea", "done": "#57ab5a", "stopped": "#e0a048", "failed": "#f47067",
             "new": "#8b949e", "imported": "#b083f0"},
}

# Banners: solid, high-contrast pairs per theme (a translucent tint under palette(text) was unreadable).
BANNERS = {
    "light": {"error": ("#fdecea", "#7a1c12", "#e6b0aa"), "warning": ("#fff4e0", "#6b3d00", "#f0c987"),
              "info": ("#e8f0fe", "#174ea6", "#aecbfa")},
    "dark": {"error": ("#4a1d1a", "#ffd9d4", "#8c3b33"), "warning": ("#4a3512", "#ffe7bf", "#8a6424"),
             "info": ("#1c2b41", "#d2e3fc", "#3b5b8c")},
}


def _palette(name: str) -> QPalette:
    p = QPalette()
    if name == "dark":
        colors = {
            QPalette.ColorRole.Window: "#2b2d30", QPalette.ColorRole.WindowText: "#dfe1e5",
            QPalette.ColorRole.Base: "#1e1f22", QPalette.ColorRole.AlternateBase: "#26282b",
            QPalette.ColorRole.ToolTipBase: "#3c3f41", QPalette.ColorRole.ToolTipText: "#dfe1e5",
            QPalette.ColorRole.PlaceholderText: "#7d8590", QPalette.ColorRole.Text: "#dfe1e5",
            QPalette.ColorRole.Button: "#35373b", QPalette.ColorRole.ButtonText: "#dfe1e5",
            QPalette.ColorRole.BrightText: "#ff6b6b", QPalette.ColorRole.Link: "#62a8ea",
            QPalette.ColorRole.Highlight: "#2f65ca", QPalette.ColorRole.HighlightedText: "#ffffff",
            QPalette.ColorRole.Mid: "#45484d", QPalette.ColorRole.Dark: "#1b1c1f",
            QPalette.ColorRole.Midlight: "#3c3f44", QPalette.ColorRole.Light: "#4a4d52",
        }
        disabled = "#6e7681"
    else:
        colors = {
            QPalette.ColorRole.Window: "#f3f4f6", QPalette.ColorRole.WindowText: "#1f2328",
            QPalette.ColorRole.Base: "#ffffff", QPalette.ColorRole.AlternateBase: "#f6f8fa",
            QPalette.ColorRole.ToolTipBase: "#ffffe8", QPalette.ColorRole.ToolTipText: "#1f2328",
            QPalette.ColorRole.PlaceholderText: "#8c959f", QPalette.ColorRole.Text: "#1f2328",
            QPalette.ColorRole.Button: "#f6f8fa", QPalette.ColorRole.ButtonText: "#1f2328",
            QPalette.ColorRole.BrightText: "#cf222e", QPalette.ColorRole.Link: "#0969da",
            QPalette.ColorRole.Highlight: "#2f6fde", QPalette.ColorRole.HighlightedText: "#ffffff",
            QPalette.ColorRole.Mid: "#c8ccd1", QPalette.ColorRole.Dark: "#a0a4a8",
            QPalette.ColorRole.Midlight: "#e3e5e8", QPalette.ColorRole.Light: "#ffffff",
        }
        disabled = "#8c959f"
    for role, color in colors.items():
        p.setColor(role, QColor(color))
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText, QPalette.ColorRole.WindowText):
        p.setColor(QPalette.ColorGroup.Disabled, role, QColor(disabled))
    return p


STYLESHEET = """
QTabWidget::pane { border: 1px solid palette(mid); border-radius: 3px; top: -1px; }
QTabBar::tab { padding: 6px 14px; }
QToolButton, QPushButton { padding: 4px 10px; }
QGroupBox { font-weight: 600; margin-top: 10px; }
QGroupBox::title { subcontrol-origin: margin; left: 8px; padding: 0 4px; }
QLabel#banner { border-radius: 4px; padding: 8px 10px; }
QLabel#heading { font-weight: 600; font-size: 11pt; }
QStatusBar QLabel { padding: 0 6px; }
"""


# Fusion draws a dark theme's check boxes and radio buttons dark grey on dark grey: give them a visible
# frame, and a fill (a dot for a radio button) when checked.
DARK_STYLESHEET = """
QRadioButton::indicator { width: 12px; height: 12px; border: 1px solid #9aa4b2; border-radius: 7px;
    background: #1e1f22; }
QRadioButton::indicator:checked { border-color: #9ccbf5; background: qradialgradient(cx:0.5, cy:0.5,
    radius:0.5, fx:0.5, fy:0.5, stop:0 #62a8ea, stop:0.5 #62a8ea, stop:0.62 #1e1f22, stop:1 #1e1f22); }
QRadioButton::indicator:disabled { border-color: #5a5f66; }
QCheckBox::indicator, QGroupBox::indicator, QTreeView::indicator { width: 13px; height: 13px; border: 1px solid #9aa4b2;
    border-radius: 2px; background: #1e1f22; }
QCheckBox::indicator:checked, QGroupBox::indicator:checked, QTreeView::indicator:checked { background: #62a8ea;
    border-color: #9ccbf5; image: url("CHECK"); }
QCheckBox::indicator:disabled { border-color: #5a5f66; }
QCheckBox::indicator:checked:disabled { background: #3a4a5c; }
"""


def _dark_stylesheet() -> str:
    """DARK_STYLESHEET with its check mark's file (a checked box was a plain blue square, no tick)."""
    from studio.engine.command import resources_dir

    return DARK_STYLESHEET.replace("CHECK", resources_dir("icons", "check-dark.svg").replace(os.sep, "/"))


def apply_theme(app: QApplication, name: str) -> str:
    """Fusion style with our palette; returns the theme name actually applied."""
    name = name if name in THEMES else "light"
    app.setStyle("Fusion")
    app.setPalette(_palette(name))
    app.setStyleSheet(STYLESHEET + (_dark_stylesheet() if name == "dark" else ""))
    app.setProperty("studio_theme", name)
    return name


def current_theme() -> str:
    app = QApplication.instance()
    name = app.property("studio_theme") if app is not None else None
    return name if name in THEMES else "light"


def plot_colors(name: str | None = None) -> dict:
    return PLOT[name or current_theme()]


def status_color(status: str, name: str | None = None) -> str:
    return STATUS_COLORS[name or current_theme()].get(status, "#888888")


def banner_style(kind: str, name: str | None = None) -> str:
    """Stylesheet of an error/warning/info banner: its background, text and border colours for the theme."""
    bg, fg, border = BANNERS[name or current_theme()][kind]
    return f"QLabel {{ background: {bg}; color: {fg}; border: 1px solid {border}; }}"
