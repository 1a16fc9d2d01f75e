"""Images in: sources (TFDS, folders, .npy, demo), official splits, the grain pipeline,
preprocessing, image I/O and LR degradations. Imports only vdvae_jax.hparams
(tests/test_layering.py)."""
