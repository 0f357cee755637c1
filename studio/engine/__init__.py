"""Running engine processes from the GUI: command resolution and QProcess wrappers."""
