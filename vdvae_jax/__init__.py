"""VDVAE (Child 2020) in JAX/Flax, faithful to the official PyTorch code, and SR built on it.

Layers, each importing only from the layers before it: hparams; data and model; convert and
sr; train; evaluate (tests/test_layering.py). errors.py and cli.py serve the entry points.
"""
