"""Dialogs for models as a whole: import (File menu) and export (any checkpoint)."""
