"""The Generate tab: prompt, sampling parameters, streamed output, side by side, history."""
