"""The Config tab: the form generated from the config dataclasses, the YAML tab, estimates."""
