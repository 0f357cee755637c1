"""Running engine processes from the GUI: command resolution, QProcess wrappers, run controllers."""
