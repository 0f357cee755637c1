"""Widgets, one per file. They show models and emit intents; they hold no business logic."""
