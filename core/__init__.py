"""The training engine: data preparation, the GPT model, training, generation and inspection."""

__version__ = "0.1.0"
