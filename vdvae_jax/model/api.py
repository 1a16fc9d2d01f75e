"""Public, jit-compiled functions on a VDVAE: ELBO, encode, decode, sample, DMoL sampling.

`params` is the Flax parameter tree {'encoder': ..., 'decoder': ...} (what `init_params` and the
converter return). Every noise source can be given explicitly so that a run replays exactly:
  eps[i]      [B, r_i, r_i, zdim]  standard normal noise of decoder block i
  u_mix       [B, R, R, K]         uniform noise of the DMoL mixture choice (Gumbel-max)
  u_logistic  [B, R, R, 3]         uniform noise of the logistic draw
By default each comes from a JAX PRNG key. Temperatures are a scalar or one per decoder block;
the prior log-std becomes pv + ln t (computed in float64 and rounded, as the official code).
`pixels` chooses how pixels come from the DMoL (likelihood.py): 'sample' (the official sampler,
the default here), 'mean' or 'mode'.
"""
from __future__ import annotations

import functools
from typing import NamedTuple, Optional, Sequence, Union

import jax
import jax.numpy as jnp
import numpy as np

from vdvae_jax.hparams import HParams
from vdvae_jax.model.likelihood import check_pixel_rule, dmol_pixels as _dmol_pixels
from vdvae_jax.model.likelihood import dmol_sample as _dmol_sample
from vdvae_jax.model.likelihood import dmol_uniforms, pixels_to_uint8, to_uint8
from vdvae_jax.model.precision import cast_tree, dtypes
from vdvae_jax.model.vae import VDVAE

Temperature = Union[float, Sequence[float], jax.Array]


def latent_shapes(hps: HParams, n: int) -> list[tuple[int, int, int, int]]:
  """Shape [n, r_i, r_i, zdim] of z (and eps) for every decoder block i."""
  return [(n, r, r, hps.zdim) for r, _ in hps.decoder_layers]


def standard_normal_eps(rng: jax.Array, hps: HParams, n: int) -> list[jax.Array]:
  keys = jax.random.split(rng, hps.n_dec_blocks)
  return [jax.random.normal(k, s) for k, s in zip(keys, latent_shapes(hps, n))]


def log_temperatures(hps: HParams, temperature: Temperature) -> jax.Array:
  """ln t per decoder block [D], float32. Concrete values go through float64 like `np.log(t)`."""
  d = hps.n_dec_blocks
  if isinstance(temperature, jax.core.Tracer):
    t = jnp.broadcast_to(jnp.asarray(temperature, jnp.float32), (d,))
    return jnp.log(t)
  t = np.broadcast_to(np.asarray(temperature, np.float64), (d,)) if np.ndim(temperature) == 0 \
      else np.asarray(temperature, np.float64)
  if t.shape != (d,):
    raise ValueError(f'temperature needs one value per decoder block ({d}), got {t.shape[0]}')
  if np.any(t < 0):
    raise ValueError(f'temperatures must be >= 0, got {t.min()}')
  with np.errstate(divide='ignore'):
    log_t = np.log(t)                      # float64, then rounded to the compute dtype
  return jnp.asarray(log_t, dtype=jax.dtypes.canonicalize_dtype(np.float64))


def init_params(hps: HParams, rng: jax.Array) -> dict:
  """A freshly initialised model with the official initialisation scheme.

  Runs `init` eagerly on an empty batch: every parameter is created, no pixel is computed, and
  nothing is compiled (a jitted init of ffhq256 spends minutes compiling the dead forward pass).
  """
  x = jnp.zeros((0, hps.image_size, hps.image_size, hps.image_channels), jnp.float32)
  return VDVAE(hps).init(rng, x, x)['params']


def cast_params(params: dict, hps: HParams) -> dict:
  """The parameters stored in hps.param_dtype, e.g. a float32 checkpoint for bfloat16 inference:
  `hps = hps.replace(dtype='bfloat16', param_dtype='bfloat16'); params = cast_params(params, hps)`
  (model/precision.py)."""
  return cast_tree(params, dtypes(hps)[1])


def abstract_params(hps: HParams) -> dict:
  """Shapes and dtypes of the parameter tree (no computation)."""
  return jax.eval_shape(lambda k: init_params(hps, k), jax.random.key(0))


# ---------------------------------------------------------------------------------------------
# ELBO and encoding


class ElboOutput(NamedTuple):
  elbo: jax.Array           # [B] nats per sub-pixel
  distortion: jax.Array     # [B]
  rate: jax.Array           # [B]
  bits_per_dim: jax.Array   # [B]
  kl_per_block: jax.Array   # [D, B] nats, summed over each block's elements
  px_z: jax.Array           # [B, R, R, W]
  dmol_params: jax.Array    # [B, R, R, 10K]


@functools.partial(jax.jit, static_argnums=0)
def _elbo(hps, params, x_input, x_target, eps):
  out = VDVAE(hps).apply({'params': params}, x_input, x_target, eps)
  return ElboOutput(*(out[k] for k in ElboOutput._fields))


def _posterior_eps(hps, x, rng, eps, posterior):
  if posterior not in ('sample', 'mean'):
    raise ValueError(f"posterior must be 'sample' or 'mean', got {posterior!r}")
  if posterior == 'mean':
    return None
  if eps is not None:
    return list(eps)
  if rng is None:
    raise ValueError("posterior='sample' needs rng or eps")
  return standard_normal_eps(rng, hps, x.shape[0])


def elbo(params: dict, hps: HParams, x_input: jax.Array, x_target: jax.Array, *,
         rng: Optional[jax.Array] = None, eps: Optional[Sequence[jax.Array]] = None,
         posterior: str = 'sample') -> ElboOutput:
  """Per-image negative ELBO (official `VAE.forward` before the batch mean), with per-block KL.

  x_input: preprocessed network input [B,R,R,3]; x_target: loss target in [-1,1] [B,R,R,3].
  posterior='sample' draws z = exp(qv) eps + qm (eps from `eps` or `rng`); 'mean' takes z = qm.
  """
  eps = _posterior_eps(hps, x_input, rng, eps, posterior)
  return _elbo(hps, params, x_input, x_target, eps)


@functools.partial(jax.jit, static_argnums=0)
def _encode(hps, params, x_input, eps):
  return VDVAE(hps).apply({'params': params}, x_input, eps, method=VDVAE.encode)


def encode(params: dict, hps: HParams, x_input: jax.Array, *, rng=None, eps=None,
           posterior: str = 'mean') -> list[jax.Array]:
  """Per-block latents z_i [B, r_i, r_i, zdim] of an image (posterior means by default)."""
  eps = _posterior_eps(hps, x_input, rng, eps, posterior)
  return _encode(hps, params, x_input, eps)


# ---------------------------------------------------------------------------------------------
# Decoding and sampling


@functools.partial(jax.jit, static_argnums=(0, 2))
def _decode(hps, params, n, latents, eps, log_t):
  px_z, _ = VDVAE(hps).apply({'params': params}, n, latents, eps, log_t, method=VDVAE.decode)
  return px_z


def _prior_eps(hps, n, k, rng, eps):
  if eps is not None:
    eps = list(eps)
    if len(eps) == hps.n_dec_blocks - k:        # noise only for the blocks that draw
      eps = [None] * k + eps
    if len(eps) != hps.n_dec_blocks:
      raise ValueError(f'eps needs {hps.n_dec_blocks} (or {hps.n_dec_blocks - k}) arrays, '
                       f'got {len(eps)}')
    return [None if i < k else e for i, e in enumerate(eps)]
  if k == hps.n_dec_blocks:                      # every block fixed: nothing to draw
    return [None] * k
  if rng is None:
    raise ValueError('decoding from the prior needs rng or eps')
  return [None if i < k else e for i, e in enumerate(standard_normal_eps(rng, hps, n))]


def decode(params: dict, hps: HParams, latents: Sequence[jax.Array] = (), *,
           n: Optional[int] = None, temperature: Temperature = 1.0, rng=None,
           eps=None) -> jax.Array:
  """px_z [n,R,R,W]: blocks 0..k-1 take the given latents, blocks k..D-1 draw from the prior.

  Official `forward_manual_latents` (k < D) and `forward_uncond` (k = 0). The prior draw is
  z = exp(pv + ln t_i) eps_i + pm; `eps` holds one array per decoder block (or per drawn block).
  """
  latents = list(latents)
  if len(latents) > hps.n_dec_blocks:
    raise ValueError(f'{len(latents)} latents given, the model has {hps.n_dec_blocks} blocks')
  if n is None:
    if not latents:
      raise ValueError('decode needs n when no latents are given')
    n = latents[0].shape[0]
  eps = _prior_eps(hps, n, len(latents), rng, eps)
  return _decode(hps, params, n, latents, eps, log_temperatures(hps, temperature))


class Sample(NamedTuple):
  image: jax.Array       # [n,R,R,3] uint8
  x: jax.Array           # [n,R,R,3] float in [-1, 1]
  mix_index: jax.Array   # [n,R,R] chosen mixture component (None for pixels='mean')
  px_z: jax.Array        # [n,R,R,W]


@functools.partial(jax.jit, static_argnums=0)
def _dmol_params(hps, params, px_z):
  return VDVAE(hps).apply({'params': params}, px_z, method=VDVAE.dmol_params)


def dmol_params(params: dict, hps: HParams, px_z: jax.Array) -> jax.Array:
  """The DMoL parameters [B,R,R,10K] of px_z (official `DmolNet.forward`)."""
  return _dmol_params(hps, params, px_z)


def dmol_sample(l: jax.Array, *, rng=None, u_mix=None, u_logistic=None) -> Sample:
  """Draw pixels from DMoL parameters l [B,R,R,10K] (official sampler); noise from rng or given."""
  if u_mix is None or u_logistic is None:
    if rng is None:
      raise ValueError('dmol_sample needs rng or both uniforms')
    u_mix, u_logistic = dmol_uniforms(rng, l.shape[:-1], l.shape[-1] // 10)
  x, idx = _dmol_sample_jit(l, u_mix, u_logistic)
  return Sample(to_uint8(x), x, idx, None)


@jax.jit
def _dmol_sample_jit(l, u_mix, u_logistic):
  return _dmol_sample(l, u_mix, u_logistic, return_index=True)


@functools.partial(jax.jit, static_argnums=1)
def _dmol_pixels_jit(l, pixels):
  x, idx = _dmol_pixels(l, pixels)
  return pixels_to_uint8(x, pixels), x, idx


def dmol_pixels(l: jax.Array, pixels: str = 'mean', *, rng=None, u_mix=None,
                u_logistic=None) -> Sample:
  """Pixels of DMoL parameters l [B,R,R,10K] by a pixel rule: 'sample' (as dmol_sample),
  'mean' (the mixture's expected value) or 'mode' (the most likely component's centre)."""
  if check_pixel_rule(pixels) == 'sample':
    return dmol_sample(l, rng=rng, u_mix=u_mix, u_logistic=u_logistic)
  return Sample(*_dmol_pixels_jit(l, pixels), None)


@functools.partial(jax.jit, static_argnums=(0, 2, 8))
def _sample(hps, params, n, latents, eps, log_t, u_mix, u_logistic, pixels='sample'):
  model = VDVAE(hps)
  px_z, _ = model.apply({'params': params}, n, latents, eps, log_t, method=VDVAE.decode)
  l = model.apply({'params': params}, px_z, method=VDVAE.dmol_params)
  x, idx = _dmol_pixels(l, pixels, u_mix, u_logistic)
  return Sample(pixels_to_uint8(x, pixels), x, idx, px_z)


def sample(params: dict, hps: HParams, n: int, *, temperature: Temperature = 1.0, rng=None,
           latents: Sequence[jax.Array] = (), eps=None, u_mix=None, u_logistic=None,
           pixels: str = 'sample') -> Sample:
  """Unconditional samples (official `forward_uncond_samples`), or, with `latents`, samples whose
  first len(latents) blocks are fixed. One jitted function from noise to uint8 pixels.
  pixels: 'sample' (official) | 'mean' | 'mode' (likelihood.py)."""
  check_pixel_rule(pixels)
  latents = list(latents)
  k_eps = k_dmol = None
  if rng is not None:
    k_eps, k_dmol = jax.random.split(rng)
  eps = _prior_eps(hps, n, len(latents), k_eps, eps)
  if pixels != 'sample':
    u_mix = u_logistic = None
  elif u_mix is None or u_logistic is None:
    if k_dmol is None:
      raise ValueError('sample needs rng or both DMoL uniforms')
    r = hps.image_size
    u_mix, u_logistic = dmol_uniforms(k_dmol, (n, r, r), hps.num_mixtures)
  return _sample(hps, params, n, latents, eps, log_temperatures(hps, temperature), u_mix,
                 u_logistic, pixels)
