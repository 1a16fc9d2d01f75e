"""VDVAE-SR (Chira et al., "Image Super-Resolution With Deep Variational Autoencoders").

An LR-encoder (the bottom-up encoder of a lower-resolution VDVAE, trained from scratch) gives one
activation g_j per decoder resolution. The top-down input of block j becomes (eq. 9)
  h~_0 = g_0,   h~_j = h_j + alpha_j g_j  (j conditioned),   h~_j = h_j  otherwise,
with gates alpha_j initialised to zero, and the top prior is conditional (eq. 10):
  p(z_0 | y) = N(mu(g_0), sigma(g_0)),  mu, log sigma linear (1x1) heads on g_0, zero-initialised.
Training maximises the conditional ELBO with the pretrained encoder frozen, the decoder fine-tuned.
Parameters: {'vdvae': pretrained tree, 'lr_encoder', 'top_prior', 'gate_<j>'}.
"""
from __future__ import annotations

from typing import Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from vdvae_jax.hparams import HParams
from vdvae_jax.model.blocks import Conv2d
from vdvae_jax.model.decoder import DecoderHooks
from vdvae_jax.model.encoder import Encoder
from vdvae_jax.model.vae import VDVAE
from vdvae_jax.sr.settings import SRSettings


class VDVAESR(nn.Module):
  hps: HParams
  sr: SRSettings

  def setup(self):
    hps = self.hps
    self.vdvae = VDVAE(hps)
    self.lr_encoder = Encoder(hps, enc_blocks=self.sr.lr_enc_blocks)
    self.top_prior = Conv2d(2 * hps.zdim, 1, scale=0.0)     # [mu | log sigma] of z_0 from g_0
    layers = hps.decoder_layers
    self.gates = {j: self.param(f'gate_{j}', nn.initializers.zeros,
                                () if self.sr.gate == 'scalar' else (hps.width_at(layers[j][0]),))
                  for j in self.sr.conditioned_blocks(hps)}

  def hooks(self, g: dict[int, jax.Array]) -> DecoderHooks:
    layers = self.hps.decoder_layers

    def block_input(i, x):
      r = layers[i][0]
      if i == 0:
        return g[r]                                          # h~_0 = g_0
      if i in self.gates:
        return x + self.gates[i] * g[r]                      # h~_j = h_j + alpha_j g_j
      return x

    def prior(i, x, pm, pv):
      if i != 0:
        return pm, pv
      return tuple(jnp.split(self.top_prior(g[layers[0][0]]), 2, axis=-1))

    return DecoderHooks(block_input=block_input, prior=prior)

  def __call__(self, x_input: jax.Array, x_target: jax.Array, y_input: jax.Array,
               eps: Optional[Sequence[jax.Array]] = None) -> dict:
    """Conditional ELBO terms per image (same keys as VDVAE.__call__). y_input: preprocessed LR."""
    return self.vdvae(x_input, x_target, eps, hooks=self.hooks(self.lr_encoder(y_input)),
                      frozen_encoder=True)

  def decode(self, y_input: jax.Array, eps, log_t) -> jax.Array:
    """px_z [n,R,R,W] of HR samples given the LR input, from the conditional prior."""
    px_z, _ = self.vdvae.decoder.decode(y_input.shape[0], (), eps, log_t,
                                        hooks=self.hooks(self.lr_encoder(y_input)))
    return px_z

  def dmol_params(self, px_z: jax.Array) -> jax.Array:
    return self.vdvae.dmol_params(px_z)
