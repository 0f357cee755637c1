"""The Training tab: run controls, progress, live plots, the engine console, multi-node dialog."""
