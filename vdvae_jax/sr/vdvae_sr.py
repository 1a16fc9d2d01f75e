"""VDVAE-SR (Chira et al., "Image Super-Resolution With Deep Variational Autoencoders").

An LR-encoder (the bottom-up encoder of a lower-resolution VDVAE, trained from scratch) gives one
activation g_j per decoder resolution. The top-down input of block j becomes (eq. 9)
  h~_0 = g_0,   h~_j = h_j + alpha_j g_j  (j conditioned),   h~_j = h_j  otherwise,
with gates alpha_j = gate_scale * a_j, a_j initialised to zero, and the top prior is conditional (eq. 10):
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
from vdvae_jax.model.precision import broadcast_param, dtypes
from vdvae_jax.model.vae import VDVAE
from vdvae_jax.sr.lr_input import LREncoder
from vdvae_jax.sr.settings import SRSettings


class VDVAESR(nn.Module):
  hps: HParams
  sr: SRSettings

  def setup(self):
    hps = self.hps
    self.vdvae = VDVAE(hps)
    self.lr_encoder = LREncoder(hps, sr=self.sr)
    dtype, param_dtype = dtypes(hps)
    # [mu | log sigma] of z_0 from g_0: a head, float32 results (model/precision.py)
    self.top_prior = Conv2d(2 * hps.zdim, 1, scale=0.0, dtype=dtype, param_dtype=param_dtype,
                            float32_result=True)
    layers = hps.decoder_layers
    self.gates = {j: self.param(f'gate_{j}', nn.initializers.zeros,
                                () if self.sr.gate == 'scalar' else (hps.width_at(layers[j][0]),),
                                param_dtype)
                  for j in self.sr.conditioned_blocks(hps)}

  def hooks(self, g: dict[int, jax.Array]) -> DecoderHooks:
    """Decoder hooks for LR activations g {r: [B,r,r,w_r]}. They take the block index i as a
    Python int or a traced int32 (scanned runs of blocks): per resolution r, a table of the
    gates of r's blocks (zero for unconditioned and other blocks; x + 0 g_r is x exactly)."""
    layers = self.hps.decoder_layers
    r0 = layers[0][0]
    top_pm, top_pv = jnp.split(self.top_prior(g[r0]), 2, axis=-1)   # p(z_0 | y), eq. 10
    shape = lambda r: () if self.sr.gate == 'scalar' else (self.hps.width_at(r),)  # noqa: E731
    tables = {r: jnp.stack([self.sr.gate_scale * self.gates[j] if j in self.gates and layers[j][0] == r
                            else jnp.zeros(shape(r), g[r].dtype) for j in range(len(layers))])
              for r in g if r in {res for res, _ in layers}}        # {r: [n_blocks, (w_r)]}

    def block_input(i, x):
      r = x.shape[1]
      if r not in tables:                                    # no LR activation at r
        return x
      alpha = broadcast_param(tables[r][i], g[r].shape, g[r].dtype)   # model/precision.py
      x = x + alpha * g[r]                                   # h~_j = h_j + alpha_j g_j
      return jnp.where(i == 0, g[r], x) if r == r0 else x    # h~_0 = g_0

    def prior(i, x, pm, pv):
      if x.shape[1] != r0:
        return pm, pv
      return jnp.where(i == 0, top_pm, pm), jnp.where(i == 0, top_pv, pv)

    return DecoderHooks(block_input=block_input, prior=prior, traced_index=True)

  def __call__(self, x_input: jax.Array, x_target: jax.Array, y_input: jax.Array,
               eps: Optional[Sequence[jax.Array]] = None) -> dict:
    """Conditional ELBO terms per image (same keys as VDVAE.__call__). y_input: preprocessed LR."""
    g = self.lr_encoder(y_input)
    return self.vdvae(x_input, x_target, eps, hooks=self.hooks(g), frozen_encoder=True)

  def decode(self, y_input: jax.Array, eps, log_t) -> jax.Array:
    """px_z [n,R,R,W] of HR samples given the LR input, from the conditional prior."""
    g = self.lr_encoder(y_input)
    px_z, _ = self.vdvae.decoder.decode(y_input.shape[0], (), eps, log_t, hooks=self.hooks(g))
    return px_z

  def dmol_params(self, px_z: jax.Array) -> jax.Array:
    return self.vdvae.dmol_params(px_z)
