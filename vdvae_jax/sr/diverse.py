"""Diverse super-resolution with a pretrained VDVAE (Prost et al., arXiv 2205.10347).

The VDVAE is frozen. An LR-encoder (VDVAE bottom-up network on the LR image y) and one new head
per decoder block k < ky give q_psi(z_k | y, z_<k) = N(m_k, exp(v_k)), (m_k, v_k) =
head_k([h_k, g_k]) with h_k the decoder state (a function of z_<k) and g_k the LR activation at
block k's resolution: the same form as the VDVAE posterior q_phi(z_k | x, z_<k), with y for x.
Training (teacher forcing): z_<k ~ q_phi(. | x) from the frozen VDVAE, loss
  sum_{k < ky} KL( q_phi(z_k | x, z_<k) || q_psi(z_k | y, z_<k) )   (nats per HR sub-pixel).
Sampling: z_k ~ q_psi for k < ky, z_k ~ prior at temperature t for k >= ky, x ~ DMoL.
Parameters: {'vdvae': pretrained tree (frozen), 'lr_encoder', 'heads_<k>'}.
"""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from vdvae_jax.hparams import HParams
from vdvae_jax.model.blocks import Block
from vdvae_jax.model.precision import dtypes
from vdvae_jax.model.decoder import DecoderHooks
from vdvae_jax.model.gaussian import draw_gaussian, gaussian_analytical_kl
from vdvae_jax.model.vae import VDVAE
from vdvae_jax.sr.lr_input import LREncoder
from vdvae_jax.sr.settings import SRSettings


class DiverseSR(nn.Module):
  hps: HParams
  sr: SRSettings

  def setup(self):
    hps = self.hps
    self.vdvae = VDVAE(hps)
    self.lr_encoder = LREncoder(hps, sr=self.sr)
    layers = hps.decoder_layers
    dtype, param_dtype = dtypes(hps)
    # Gaussian heads: float32 results (model/precision.py).
    self.heads = [Block(hps.bottleneck(r), 2 * hps.zdim, residual=False, use_3x3=r > 2,
                        dtype=dtype, param_dtype=param_dtype, float32_result=True)
                  for r, _ in layers[:self.sr.ky]]

  def q_psi(self, k: int, h: jax.Array, g: dict[int, jax.Array]):
    """(mean, log std) of q_psi(z_k | y, z_<k): [B, r_k, r_k, zdim] each."""
    r = self.hps.decoder_layers[k][0]
    return tuple(jnp.split(self.heads[k](jnp.concatenate([h, g[r]], axis=-1)), 2, axis=-1))

  def __call__(self, x_input: jax.Array, y_input: jax.Array, eps: Sequence[jax.Array]) -> dict:
    """Per-image KL(q_phi || q_psi) of the first ky groups: kl_per_block [ky, B] (nats) and
    loss [B] (nats per HR sub-pixel). eps: posterior noise of the frozen VDVAE (teacher forcing)."""
    acts = self.vdvae.encoder(x_input)
    # Only the top ky blocks are needed: the decoder's higher resolutions are not run.
    n = self.sr.ky if not self.is_initializing() else None
    _, stats = self.vdvae.decoder(acts, eps, n_blocks=n)
    stats = jax.lax.stop_gradient(stats[:self.sr.ky])
    g = self.lr_encoder(y_input)
    kls = []
    for k, s in enumerate(stats):
      m, v = self.q_psi(k, s['x_in'], g)
      kls.append(gaussian_analytical_kl(s['qm'], m, s['qv'], v).sum(axis=(1, 2, 3)))
    kl = jnp.stack(kls) if kls else jnp.zeros((0, x_input.shape[0]), x_input.dtype)
    return dict(kl_per_block=kl, loss=kl.sum(axis=0) / self.hps.ndims)

  def initialize(self, x_input: jax.Array, y_input: jax.Array) -> dict:
    """Touch every parameter (the loss does not use the VDVAE's output head)."""
    out = self(x_input, y_input, None)
    self.vdvae.dmol_params(jnp.zeros(x_input.shape[:3] + (self.hps.width,), x_input.dtype))
    return out

  def decode(self, y_input: jax.Array, eps, log_t) -> jax.Array:
    """px_z of HR samples: z_k = exp(v_k + log_t[k]) eps_k + m_k from q_psi for k < ky, the
    prior at temperature exp(log_t[k]) below."""
    g = self.lr_encoder(y_input) if self.sr.ky else {}

    def latent(i, h):
      if i >= self.sr.ky:
        return None
      m, v = self.q_psi(i, h, g)
      return draw_gaussian(m, v + log_t[i], eps[i])

    px_z, _ = self.vdvae.decoder.decode(y_input.shape[0], (), eps, log_t,
                                        hooks=DecoderHooks(latent=latent))
    return px_z

  def dmol_params(self, px_z: jax.Array) -> jax.Array:
    return self.vdvae.dmol_params(px_z)
