"""Widgets, styles and small dialogs shared by several features."""
