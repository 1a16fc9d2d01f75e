"""Diagonal Gaussians parameterised by mean and log standard deviation (official vae_helpers).

Always float32 (or wider): the arguments are cast up first, whatever the compute dtype
(model/precision.py).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from vdvae_jax.model.precision import float32


def gaussian_analytical_kl(mu1: jax.Array, mu2: jax.Array, logsigma1: jax.Array,
                           logsigma2: jax.Array) -> jax.Array:
  """Elementwise KL( N(mu1, e^{2 logsigma1}) || N(mu2, e^{2 logsigma2}) ), official formula:
  -1/2 + logsigma2 - logsigma1 + (e^{2 logsigma1} + (mu1 - mu2)^2) / (2 e^{2 logsigma2})."""
  mu1, mu2, logsigma1, logsigma2 = (float32(a) for a in (mu1, mu2, logsigma1, logsigma2))
  return (-0.5 + logsigma2 - logsigma1
          + 0.5 * (jnp.exp(logsigma1) ** 2 + (mu1 - mu2) ** 2) / jnp.exp(logsigma2) ** 2)


def draw_gaussian(mu: jax.Array, logsigma: jax.Array, eps: jax.Array | None) -> jax.Array:
  """z = exp(logsigma) * eps + mu; eps=None gives the mean."""
  mu, logsigma, eps = float32(mu), float32(logsigma), float32(eps)
  if eps is None:
    return mu
  return jnp.exp(logsigma) * eps + mu
