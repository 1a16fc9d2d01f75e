"""Discretized mixture of logistics (DMoL): loss, sampler and pixel rules (official `vae_helpers.py`).

Parameter layout `l` [B, H, W, 10K] (NHWC): channels [0:K] are the mixture logits; channels
[K:10K] reshape to [3, 3K] and give, for colour c, [means K | log_scales K | coeff pre-tanh K].
Pixels live in [-1, 1]. The autoregressive channel means are
  m_0 = mu_0,  m_1 = mu_1 + c_0 x_0,  m_2 = mu_2 + c_1 x_0 + c_2 x_1   (c = tanh(coeff)).

Pixel rules (how an image is produced from `l`, `dmol_pixels`):
  sample  the official sampler: a component by Gumbel-max, a logistic draw per channel, each
          channel clipped to [-1, 1] before it enters the next one's mean.
  mean    the mixture's expected value, sum_k pi_k E[x | k] with E[x_0|k] = mu_0k,
          E[x_1|k] = mu_1k + c_0k E[x_0|k], E[x_2|k] = mu_2k + c_1k E[x_0|k] + c_2k E[x_1|k]
          (the coupling is linear), then clipped to [-1, 1]. The minimum-MSE image of the DMoL
          (up to the sampler's clipping): the rule for PSNR.
  mode    the centre of the most likely component: argmax_k pi_k, then the sampler's path with
          every logistic at its median (x_c = m_c, clipped as the sampler clips).

Always float32 (or wider), whatever the compute dtype: `_unpack` casts `l` up and the
log-likelihood its target `x` (model/precision.py).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from vdvae_jax.model.precision import float32

LOG_SCALE_MIN = -7.0


def _unpack(l: jax.Array, num_mixtures: int):
  """l [B,H,W,10K] -> logits [B,H,W,K], means/log_scales/coeffs [B,H,W,3,K] (coeffs pre-tanh),
  in float32 at least."""
  l = float32(l)
  k = num_mixtures
  if l.shape[-1] != 10 * k:
    raise ValueError(f'DMoL parameters have {l.shape[-1]} channels, expected 10*{k}')
  logits = l[..., :k]
  rest = l[..., k:].reshape(l.shape[:-1] + (3, 3 * k))
  return logits, rest[..., :k], rest[..., k:2 * k], rest[..., 2 * k:3 * k]


def dmol_log_prob(x: jax.Array, l: jax.Array, *, low_bit: bool) -> jax.Array:
  """Per-image log-likelihood summed over pixels, in nats.  x [B,H,W,3] in [-1,1] -> [B]."""
  k = l.shape[-1] // 10
  logits, means, log_scales, coeffs = _unpack(l, k)
  log_scales = jnp.maximum(log_scales, LOG_SCALE_MIN)
  coeffs = jnp.tanh(coeffs)
  x = float32(x)[..., None]                                          # [B,H,W,3,1]
  m1 = means[..., 1, :] + coeffs[..., 0, :] * x[..., 0, :]
  m2 = means[..., 2, :] + coeffs[..., 1, :] * x[..., 0, :] + coeffs[..., 2, :] * x[..., 1, :]
  means = jnp.stack([means[..., 0, :], m1, m2], axis=-2)             # [B,H,W,3,K]
  centered = x - means
  inv_stdv = jnp.exp(-log_scales)
  # Half-bin width: the official code uses 1/31 for 5-bit data (not 4/127.5) and 1/255 for 8-bit.
  half_bin = 1.0 / 31.0 if low_bit else 1.0 / 255.0
  plus_in = inv_stdv * (centered + half_bin)
  min_in = inv_stdv * (centered - half_bin)
  cdf_delta = jax.nn.sigmoid(plus_in) - jax.nn.sigmoid(min_in)
  log_cdf_plus = plus_in - jax.nn.softplus(plus_in)                  # x at the left edge
  log_one_minus_cdf_min = -jax.nn.softplus(min_in)                   # x at the right edge
  mid_in = inv_stdv * centered
  log_pdf_mid = mid_in - log_scales - 2.0 * jax.nn.softplus(mid_in)
  tail = log_pdf_mid - np.log(15.5 if low_bit else 127.5)
  log_probs = jnp.where(
      x < -0.999, log_cdf_plus,
      jnp.where(x > 0.999, log_one_minus_cdf_min,
                jnp.where(cdf_delta > 1e-5, jnp.log(jnp.maximum(cdf_delta, 1e-12)), tail)))
  log_probs = log_probs.sum(axis=-2) + jax.nn.log_softmax(logits, axis=-1)   # [B,H,W,K]
  return jax.nn.logsumexp(log_probs, axis=-1).sum(axis=(1, 2))


def dmol_nll(x: jax.Array, l: jax.Array, *, low_bit: bool) -> jax.Array:
  """Official `discretized_mix_logistic_loss`: negative log-likelihood in nats per sub-pixel, [B]."""
  return -dmol_log_prob(x, l, low_bit=low_bit) / np.prod(x.shape[1:])


def dmol_uniforms(key: jax.Array, batch_shape: tuple[int, ...], num_mixtures: int):
  """The two uniforms of the official sampler, U[1e-5, 1-1e-5): ([..., K], [..., 3])."""
  k1, k2 = jax.random.split(key)
  lo, hi = 1e-5, 1.0 - 1e-5
  u_mix = jax.random.uniform(k1, batch_shape + (num_mixtures,), minval=lo, maxval=hi)
  u_logistic = jax.random.uniform(k2, batch_shape + (3,), minval=lo, maxval=hi)
  return u_mix, u_logistic


def dmol_sample(l: jax.Array, u_mix: jax.Array, u_logistic: jax.Array,
                return_index: bool = False):
  """Official `sample_from_discretized_mix_logistic` with its noise passed in.

  l [B,H,W,10K]; u_mix [B,H,W,K]; u_logistic [B,H,W,3]. Returns x [B,H,W,3] in [-1, 1]
  (and the chosen mixture index [B,H,W] if `return_index`).
  """
  k = l.shape[-1] // 10
  logits, means, log_scales, coeffs = _unpack(l, k)
  amax = jnp.argmax(logits - jnp.log(-jnp.log(u_mix)), axis=-1)     # Gumbel-max, [B,H,W]
  pick = lambda t: jnp.take_along_axis(t, amax[..., None, None], axis=-1)[..., 0]  # noqa: E731
  means = pick(means)                                                # [B,H,W,3]
  log_scales = jnp.maximum(pick(log_scales), LOG_SCALE_MIN)
  coeffs = pick(jnp.tanh(coeffs))
  x = means + jnp.exp(log_scales) * (jnp.log(u_logistic) - jnp.log(1.0 - u_logistic))
  x0 = jnp.clip(x[..., 0], -1.0, 1.0)
  x1 = jnp.clip(x[..., 1] + coeffs[..., 0] * x0, -1.0, 1.0)
  x2 = jnp.clip(x[..., 2] + coeffs[..., 1] * x0 + coeffs[..., 2] * x1, -1.0, 1.0)
  out = jnp.stack([x0, x1, x2], axis=-1)
  return (out, amax) if return_index else out


PIXEL_RULES = ('sample', 'mean', 'mode')


def check_pixel_rule(pixels: str) -> str:
  if pixels not in PIXEL_RULES:
    raise ValueError(f'pixels must be one of {", ".join(PIXEL_RULES)}; got {pixels!r}')
  return pixels


def _channel_means(means: jax.Array, coeffs: jax.Array, clip: bool) -> jax.Array:
  """Per-component channel means [..., 3, K] with the autoregressive coupling applied to the
  earlier channels' means (clipped to [-1, 1] first if `clip`, as the sampler does)."""
  c = (lambda v: jnp.clip(v, -1.0, 1.0)) if clip else (lambda v: v)  # noqa: E731
  m0 = c(means[..., 0, :])
  m1 = c(means[..., 1, :] + coeffs[..., 0, :] * m0)
  m2 = c(means[..., 2, :] + coeffs[..., 1, :] * m0 + coeffs[..., 2, :] * m1)
  return jnp.stack([m0, m1, m2], axis=-2)


def dmol_mean(l: jax.Array) -> jax.Array:
  """Expected value of the mixture (see the module docstring): l [B,H,W,10K] -> [B,H,W,3]."""
  logits, means, _, coeffs = _unpack(l, l.shape[-1] // 10)
  pi = jax.nn.softmax(logits, axis=-1)[..., None, :]                 # [B,H,W,1,K]
  m = _channel_means(means, jnp.tanh(coeffs), clip=False)            # [B,H,W,3,K]
  return jnp.clip((pi * m).sum(axis=-1), -1.0, 1.0)


def dmol_mode(l: jax.Array, return_index: bool = False):
  """Centre of the most likely component: l [B,H,W,10K] -> [B,H,W,3] (and the index [B,H,W])."""
  logits, means, _, coeffs = _unpack(l, l.shape[-1] // 10)
  k = jnp.argmax(logits, axis=-1)                                    # [B,H,W]
  pick = lambda t: jnp.take_along_axis(t, k[..., None, None], axis=-1)  # noqa: E731
  x = _channel_means(pick(means), pick(jnp.tanh(coeffs)), clip=True)[..., 0]
  return (x, k) if return_index else x


def dmol_pixels(l: jax.Array, pixels: str, u_mix=None, u_logistic=None):
  """(x [B,H,W,3] in [-1, 1], component index [B,H,W] or None) by a pixel rule; 'sample' needs
  the sampler's uniforms."""
  check_pixel_rule(pixels)
  if pixels == 'sample':
    return dmol_sample(l, u_mix, u_logistic, return_index=True)
  if pixels == 'mode':
    return dmol_mode(l, return_index=True)
  return dmol_mean(l), None


def pixels_to_uint8(x: jax.Array, pixels: str) -> jax.Array:
  """uint8 image of pixels in [-1, 1]: the official truncation for samples, rounding for the
  deterministic rules (a mean is an estimate, not a draw: truncating would bias it by -0.5)."""
  if pixels == 'sample':
    return to_uint8(x)
  return jnp.clip(jnp.round((x + 1.0) * 127.5), 0.0, 255.0).astype(jnp.uint8)


def to_uint8(x: jax.Array) -> jax.Array:
  """Official `DmolNet.sample` conversion: clip((x + 1) * 127.5, 0, 255) truncated to uint8."""
  return jnp.clip((x + 1.0) * 127.5, 0.0, 255.0).astype(jnp.uint8)
