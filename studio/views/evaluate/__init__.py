"""Evaluate… on a checkpoint (dialog.py), the saved results of a checkpoint (results.py), and the intents
that open them from the Run menu and the runs list (actions.py)."""
