"""The Fine-tune dialog: base model, data with a trained/masked preview, LoRA or full, then a run."""
