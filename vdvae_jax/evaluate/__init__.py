"""Evaluation: metrics, LPIPS, eval.py's modes and the figures of the notebooks. The top layer:
it may import every other part of the package; nothing imports it."""
