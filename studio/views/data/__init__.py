"""The Data tab: sources, tokenizer choice, prepare progress, data set list and token preview."""
