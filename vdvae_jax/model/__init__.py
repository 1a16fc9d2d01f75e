"""The VDVAE itself: blocks, convolutions, scans, encoder, decoder, likelihood, the public api
and the pretrained-model format. Imports only vdvae_jax.hparams: it knows nothing of data, SR,
training or evaluation (tests/test_layering.py)."""
