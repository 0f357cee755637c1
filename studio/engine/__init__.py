"""Running engine processes from the GUI: the engine command resolver, QProcess wrappers (prepare and
inference), the detached training job and its launcher, and reading why an engine failed. No views and
no run state: those belong to studio.controllers.
"""
