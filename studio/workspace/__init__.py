"""Pure-Python (Qt-free) models of a workspace, its runs and their metrics, observed by the widgets."""
