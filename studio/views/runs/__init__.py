"""The runs list and the dialogs that create runs from others (fork)."""
