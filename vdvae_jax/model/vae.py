"""The VDVAE module (official `vae.VAE`): encoder + decoder + DMoL likelihood, and the ELBO.

All tensors are NHWC. The ELBO is in nats per sub-pixel (official units):
  elbo = distortion + rate,  distortion = -log p(x|z) / (R R 3),  rate = sum_i KL_i / (R R 3).
These are float32 whatever hps.dtype; px_z is in the compute dtype (model/precision.py).
"""
from __future__ import annotations

from typing import Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from vdvae_jax.hparams import HParams, parse_layer_string
from vdvae_jax.model.decoder import Decoder, DecoderHooks, decoder_runs
from vdvae_jax.model.encoder import Encoder, encoder_runs
from vdvae_jax.model.layout import LayoutSpec
from vdvae_jax.model.likelihood import dmol_nll
from vdvae_jax.model.precision import float32

LN2 = float(np.log(2.0))


def scan_layout(hps: HParams, path: tuple = ()) -> LayoutSpec:
  """The stacked layout (model/layout.py) of the VDVAE parameters at `path`: the runs that
  hps.scan_blocks scans; empty without scan_blocks."""
  if not hps.scan_blocks:
    return {}
  enc = parse_layer_string(hps.enc_blocks, field='enc_blocks')
  return {path + ('encoder',): ('enc_blocks_', encoder_runs(enc)),
          path + ('decoder',): ('dec_blocks_', decoder_runs(hps.decoder_layers))}


class VDVAE(nn.Module):
  hps: HParams

  def setup(self):
    self.encoder = Encoder(self.hps)
    self.decoder = Decoder(self.hps)

  def __call__(self, x_input: jax.Array, x_target: jax.Array,
               eps: Optional[Sequence[jax.Array]] = None, hooks: Optional[DecoderHooks] = None,
               frozen_encoder: bool = False) -> dict[str, jax.Array]:
    """Per-image ELBO terms. eps: per-block posterior noise [B,r,r,zdim] (None: posterior mean).

    Returns elbo, distortion, rate, bits_per_dim [B]; kl_per_block [D, B] (nats, summed over the
    block's elements); px_z [B,R,R,W]; dmol_params [B,R,R,10K]; z, per-block latents.
    hooks: decoder interventions (conditional models); frozen_encoder: no gradient through the
    bottom-up pass.
    """
    acts = self.encoder(x_input)
    if frozen_encoder:
      acts = jax.lax.stop_gradient(acts)
    px_z, stats = self.decoder(acts, eps, hooks)
    l = self.decoder.dmol_params(px_z)
    distortion = dmol_nll(x_target, l, low_bit=self.hps.low_bit)
    # ELBO terms in float32 whatever the compute dtype (model/precision.py).
    kl_per_block = jnp.stack([float32(s['kl']).sum(axis=(1, 2, 3)) for s in stats])   # [D, B]
    rate = kl_per_block.sum(axis=0) / self.hps.ndims
    elbo = distortion + rate
    return dict(elbo=elbo, distortion=distortion, rate=rate, bits_per_dim=elbo / LN2,
                kl_per_block=kl_per_block, px_z=px_z, dmol_params=l,
                z=[s['z'] for s in stats], stats=stats)

  def encode(self, x_input: jax.Array, eps: Optional[Sequence[jax.Array]] = None):
    """Per-block latents z_i [B,r_i,r_i,zdim] of the posterior (mean if eps is None)."""
    acts = self.encoder(x_input)
    _, stats = self.decoder(acts, eps)
    return [s['z'] for s in stats]

  def decode(self, n: int, latents: Sequence[jax.Array] = (), eps=None, log_t=None):
    """px_z [n,R,R,W] from fixed latents for a prefix of blocks and prior draws for the rest."""
    return self.decoder.decode(n, latents, eps, log_t)

  def dmol_params(self, px_z: jax.Array) -> jax.Array:
    return self.decoder.dmol_params(px_z)
