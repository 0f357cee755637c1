"""The Attention tab: heatmaps, head grid, token view, snapshot slider, exports."""
