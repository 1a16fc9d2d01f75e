"""Super-resolution on a pretrained VDVAE: build, initialise, train losses, jitted sampling.

`params` of an SR model: {'vdvae': the pretrained VDVAE tree, ...new parameters...}.
"""
from __future__ import annotations

import functools
from typing import Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from vdvae_jax.data.preprocess import preprocess
from vdvae_jax.hparams import HParams, HParamsError, parse_layer_string
from vdvae_jax.model.api import Sample, log_temperatures, standard_normal_eps
from vdvae_jax.model.encoder import encoder_runs
from vdvae_jax.model.layout import LayoutSpec
from vdvae_jax.model.likelihood import check_pixel_rule, dmol_pixels, dmol_uniforms, \
    pixels_to_uint8
from vdvae_jax.model.vae import scan_layout as vdvae_scan_layout
from vdvae_jax.sr import baselines
from vdvae_jax.sr.diverse import DiverseSR
from vdvae_jax.sr.settings import BASELINES, SRSettings
from vdvae_jax.sr.vdvae_sr import VDVAESR


def make_model(hps: HParams, sr: SRSettings) -> nn.Module:
  sr.validate(hps)
  return VDVAESR(hps, sr) if sr.method == 'vdvae_sr' else DiverseSR(hps, sr)


def _dummy_inputs(hps: HParams, sr: SRSettings):
  r, lr = hps.image_size, sr.lr_size(hps)
  return (jnp.zeros((0, r, r, 3), jnp.float32), jnp.zeros((0, lr, lr, 3), jnp.float32))


def init_params(hps: HParams, sr: SRSettings, rng: jax.Array,
                pretrained: Optional[dict] = None) -> dict:
  """New SR parameters (eagerly, on an empty batch), with the VDVAE part from `pretrained`."""
  if sr.method in BASELINES:
    sr.validate(hps)
    return baselines.init(sr.method, sr.scale, hps.image_size, rng)
  model = make_model(hps, sr)
  x, y = _dummy_inputs(hps, sr)
  if sr.method == 'vdvae_sr':
    params = model.init(rng, x, x, y)['params']
  else:
    params = model.init(rng, x, y, method=DiverseSR.initialize)['params']
  params = dict(params)
  if pretrained is not None:
    want = jax.tree.map(lambda a: a.shape, params['vdvae'])
    got = jax.tree.map(lambda a: np.shape(a), dict(pretrained))
    if want != got:
      raise HParamsError('the pretrained VDVAE does not have the architecture of config.model')
    params['vdvae'] = jax.tree.map(jnp.asarray, dict(pretrained))
  return params


def abstract_params(hps: HParams, sr: SRSettings) -> dict:
  """Shapes and dtypes of an SR model's parameter tree (no computation)."""
  return jax.eval_shape(lambda k: init_params(hps, sr, k), jax.random.key(0))


def scan_layout(hps: HParams, sr: SRSettings) -> LayoutSpec:
  """The stacked layout (model/layout.py) of an SR model's parameters under hps.scan_blocks:
  the VDVAE's runs and the LR-encoder's."""
  if sr.method in BASELINES or not hps.scan_blocks:
    return {}
  lr_enc = parse_layer_string(sr.lr_enc_blocks, field='sr.lr_enc_blocks')
  return {**vdvae_scan_layout(hps, ('vdvae',)),
          ('lr_encoder',): ('enc_blocks_', encoder_runs(lr_enc))}


def trainable_labels(params: dict, sr: SRSettings) -> dict:
  """'train' / 'finetune' / 'freeze' per leaf. VDVAE-SR: the pretrained encoder is frozen, the
  decoder is fine-tuned (at sr.finetune_lr_scale times the learning rate); diverse SR: the whole
  VDVAE is frozen. New parameters always train."""
  def label(path, _):
    top = path[0].key
    if sr.method in BASELINES:
      return 'train'
    if top != 'vdvae':
      return 'train'
    if sr.method == 'vdvae_sr' and path[1].key == 'decoder':
      return 'finetune'
    return 'freeze'
  return jax.tree_util.tree_map_with_path(label, params)


def check_lr_shape(lr: jax.Array, hps: HParams, sr: SRSettings) -> None:
  want = sr.lr_size(hps)
  if lr.ndim != 4 or lr.shape[1:3] != (want, want) or lr.shape[-1] != 3:
    raise ValueError(f'LR input of shape {tuple(lr.shape)} does not fit the model: x{sr.scale} of '
                     f'{hps.image_size}x{hps.image_size} needs [B, {want}, {want}, 3] patches '
                     f'(use tiled super-resolution for other sizes)')


def sr_loss(hps: HParams, sr: SRSettings):
  """loss_fn(params, batch, key) for the train step; batch = {'image': HR u8, 'lr': LR u8}."""
  if sr.method in BASELINES:
    return baselines.loss_fn(sr.method, sr.scale)
  model = make_model(hps, sr)

  def loss_fn(params, batch, key):
    x, t = preprocess(batch['image'], hps)
    y, _ = preprocess(batch['lr'], hps)
    eps = standard_normal_eps(key, hps, x.shape[0])
    if sr.method == 'vdvae_sr':
      out = model.apply({'params': params}, x, t, y, eps)
      metrics = dict(elbo=out['elbo'].mean(), distortion=out['distortion'].mean(),
                     rate=out['rate'].mean(), bits_per_dim=out['bits_per_dim'].mean())
      return out['elbo'].mean(), metrics
    out = model.apply({'params': params}, x, y, eps)
    return out['loss'].mean(), dict(kl_q_psi=out['loss'].mean())

  return loss_fn


@functools.partial(jax.jit, static_argnums=(0, 1, 8))
def _sample(hps, sr, params, y_input, eps, log_t, u_mix, u_logistic, pixels):
  model = make_model(hps, sr)
  px_z = model.apply({'params': params}, y_input, eps, log_t, method=model.decode)
  l = model.apply({'params': params}, px_z, method=model.dmol_params)
  x, idx = dmol_pixels(l, pixels, u_mix, u_logistic)
  return Sample(pixels_to_uint8(x, pixels), x, idx, px_z)


def super_resolve(params: dict, hps: HParams, sr: SRSettings, lr_uint8: jax.Array, *,
                  n_samples: int = 1, temperature: float = 0.8,
                  psi_temperature: Optional[float] = None,
                  pixels: str = 'mean', rng: jax.Array) -> Sample:
  """n_samples HR samples per LR patch: lr [B, r, r, 3] uint8 -> image [B, n, R, R, 3] uint8.

  VDVAE-SR: every group from the conditional prior at `temperature`. Diverse SR: groups k < ky
  from q_psi at `psi_temperature` (None: `temperature`, so t scales every group's standard
  deviation; 1.0 draws them from q_psi itself), the rest from the prior at `temperature`.
  pixels: how the
  image comes from the DMoL, 'mean' (default: the minimum-MSE image), 'mode' or 'sample' (the
  official VDVAE sampler; adds pixel noise), see model/likelihood.py."""
  check_pixel_rule(pixels)
  lr_uint8 = jnp.asarray(lr_uint8)
  check_lr_shape(lr_uint8, hps, sr)
  if sr.method in BASELINES:
    image = _baseline_sr(sr.method, sr.scale, params, lr_uint8, n_samples, temperature, rng)
    return Sample(image, image.astype(jnp.float32) / 127.5 - 1.0, None, None)
  b = lr_uint8.shape[0]
  y, _ = preprocess(jnp.repeat(lr_uint8, n_samples, axis=0), hps)
  temps = np.full(hps.n_dec_blocks, temperature, np.float64)
  if sr.method == 'diverse':
    temps[:sr.ky] = temperature if psi_temperature is None else psi_temperature
  k_eps, k_dmol = jax.random.split(rng)
  n = b * n_samples
  eps = standard_normal_eps(k_eps, hps, n)
  r = hps.image_size
  u_mix = u_logistic = None
  if pixels == 'sample':
    u_mix, u_logistic = dmol_uniforms(k_dmol, (n, r, r), hps.num_mixtures)
  s = _sample(hps, sr, params, y, eps, log_temperatures(hps, temps), u_mix, u_logistic, pixels)
  return Sample(*(None if a is None else a.reshape((b, n_samples) + a.shape[1:]) for a in s))


_baseline_sr = jax.jit(baselines.super_resolve, static_argnums=(0, 1, 4))


def degrade_jax(x: jax.Array, sr: SRSettings) -> jax.Array:
  """The LR degradation of float images [..., H, W, 3] in 0..255 (no intermediate rounding)."""
  from vdvae_jax.data.degradations import gaussian_blur_downsample_jax, imresize_jax
  if sr.degradation == 'bicubic':
    return imresize_jax(x, scale=1.0 / sr.scale)
  return gaussian_blur_downsample_jax(x, sr.scale, sr.sigma)


def _psnr(a: jax.Array, b: jax.Array) -> jax.Array:
  """Per-image PSNR of uint8-valued float images [B, H, W, 3] (data range 255)."""
  mse = jnp.mean((a - b) ** 2, axis=(1, 2, 3))
  return 10.0 * jnp.log10(255.0 ** 2 / jnp.maximum(mse, 1e-10))


def sr_eval(hps: HParams, sr: SRSettings, temperature: float, pixels: str = 'mean'):
  """eval_fn(params, batch, key) -> per-image metrics: the training loss terms, and for one sample
  at `temperature` (pixels by `pixels`): RGB PSNR to the HR patch and LR-consistency PSNR
  (degraded sample vs LR)."""
  check_pixel_rule(pixels)
  loss_fn = sr_loss(hps, sr)
  if sr.method in BASELINES:
    def baseline_eval(params, batch, key):
      loss, m = loss_fn(params, batch, key)
      sample = baselines.super_resolve(sr.method, sr.scale, params, batch['lr'], 1, temperature,
                                       key)[:, 0].astype(jnp.float32)
      lr_of_sample = jnp.clip(jnp.round(degrade_jax(sample, sr)), 0, 255)
      return dict(psnr_rgb=_psnr(sample, batch['image'].astype(jnp.float32)),
                  lr_psnr=_psnr(lr_of_sample, batch['lr'].astype(jnp.float32)))
    return baseline_eval
  model = make_model(hps, sr)
  log_t = log_temperatures(hps, temperature)      # every group, q_psi's too (diverse)

  def eval_fn(params, batch, key):
    k1, k2, k3 = jax.random.split(key, 3)
    x, t = preprocess(batch['image'], hps)
    y, _ = preprocess(batch['lr'], hps)
    n = x.shape[0]
    if sr.method == 'vdvae_sr':
      out = model.apply({'params': params}, x, t, y, standard_normal_eps(k1, hps, n))
      metrics = {k: out[k] for k in ('elbo', 'distortion', 'rate', 'bits_per_dim')}
    else:
      out = model.apply({'params': params}, x, y, standard_normal_eps(k1, hps, n))
      metrics = dict(kl_q_psi=out['loss'])
    px_z = model.apply({'params': params}, y, standard_normal_eps(k2, hps, n), log_t,
                       method=model.decode)
    l = model.apply({'params': params}, px_z, method=model.dmol_params)
    r = hps.image_size
    u_mix, u_log = dmol_uniforms(k3, (n, r, r), hps.num_mixtures)
    x_sr, _ = dmol_pixels(l, pixels, u_mix, u_log)
    sample = pixels_to_uint8(x_sr, pixels).astype(jnp.float32)
    lr_of_sample = jnp.clip(jnp.round(degrade_jax(sample, sr)), 0, 255)
    metrics.update(psnr_rgb=_psnr(sample, batch['image'].astype(jnp.float32)),
                   lr_psnr=_psnr(lr_of_sample, batch['lr'].astype(jnp.float32)))
    return metrics

  return eval_fn
