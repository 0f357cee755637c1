"""Running engine processes from the GUI: command resolution, QProcess wrappers, run controllers.

Importing any Qt part of this package first applies the PySide6 workaround in `pyside_fix`.
"""
