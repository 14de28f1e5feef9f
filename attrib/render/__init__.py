"""Rendering: heatmap images (heatmap.py) and terminal tables (terminal.py)."""
