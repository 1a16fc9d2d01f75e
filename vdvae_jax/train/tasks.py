"""What a training run optimises: the unconditional VDVAE or one of the SR models.

A Task bundles, for the loop: parameter initialisation (with `config.init_from`), the loss, the
evaluation function, which parameters train, the image grid logged periodically, and the runs of
blocks the train state holds pre-stacked. Loss and evaluation accept either parameter layout.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Optional

import jax
import ml_collections
import numpy as np

from vdvae_jax.hparams import HParams, HParamsError
from vdvae_jax.model import api
from vdvae_jax.model.checkpoint import CheckpointError, load_pretrained
from vdvae_jax.model.vae import scan_layout as vdvae_scan_layout
from vdvae_jax.train.config import ConfigError
from vdvae_jax.train.logging import tile
from vdvae_jax.train.losses import elbo_eval, elbo_loss


@dataclasses.dataclass
class Task:
  name: str
  init_params: Callable[[jax.Array], Any]
  loss_fn: Callable
  eval_fn: Callable
  labels: Callable[[Any], Any] = lambda params: None
  grid: Callable[[Any, dict, jax.Array], np.ndarray] = None
  lr_scale: Optional[int] = None
  degradation: str = 'bicubic'
  sigma: Optional[float] = None
  sr: Any = None            # SRSettings of SR tasks
  # learning-rate factor per label of `labels` other than 'train' / 'freeze' (train/optimizer.py)
  lr_factors: dict = dataclasses.field(default_factory=dict)
  # runs of blocks the train state holds pre-stacked (model/layout.py); {} = per-block layout
  scan_layout: dict = dataclasses.field(default_factory=dict)


def sr_settings(config: ml_collections.ConfigDict):
  from vdvae_jax.sr.settings import SRSettings
  c = config.sr
  return SRSettings(method=c.method, scale=c.scale, lr_enc_blocks=c.lr_enc_blocks,
                    lr_upsample=c.lr_upsample,
                    condition=c.condition, num_conditioned=c.num_conditioned,
                    max_condition_res=c.max_condition_res, gate=c.gate, gate_scale=c.gate_scale,
                    finetune_lr_scale=c.finetune_lr_scale, ky=c.ky,
                    degradation=c.degradation, sigma=c.sigma)


def _pretrained(config, hps: HParams):
  if not config.init_from:
    return None
  try:
    params, _ = load_pretrained(config.init_from, expected=hps)
  except CheckpointError as e:
    raise ConfigError(f'config.init_from: {e}') from None
  return params


def make_task(config: ml_collections.ConfigDict, hps: HParams) -> Task:
  if not config.sr.method:
    def init(rng):
      pre = _pretrained(config, hps)
      return pre if pre is not None else api.init_params(hps, rng)

    def grid(params, batch, rng):
      from vdvae_jax.train.grids import temperature_grid
      return temperature_grid(params, hps, config.train.sample_temperatures,
                              config.train.samples_per_temperature, rng)
    return Task('vdvae', init, elbo_loss(hps), elbo_eval(hps), grid=grid,
                scan_layout=vdvae_scan_layout(hps))

  from vdvae_jax.sr import api as sr_api
  try:
    sr = sr_settings(config)
    sr.validate(hps)
  except HParamsError as e:
    raise ConfigError(f'config.sr: {e}') from None
  from vdvae_jax.sr.settings import BASELINES
  if not config.init_from and sr.method not in BASELINES:
    print('warning: config.init_from is empty: the SR model starts from an untrained VDVAE')

  def init(rng):
    try:
      pre = None if sr.method in BASELINES else _pretrained(config, hps)
      return sr_api.init_params(hps, sr, rng, pre)
    except HParamsError as e:
      raise ConfigError(f'config.init_from: {e}') from None

  def grid(params, batch, rng):
    """Rows: LR (nearest-upsampled) | bicubic | samples at each temperature | HR."""
    from vdvae_jax.data.degradations import imresize
    t = config.train
    n = min(t.samples_per_temperature, batch['image'].shape[0])
    lr, hr = np.asarray(batch['lr'][:n]), np.asarray(batch['image'][:n])
    cols = [np.repeat(np.repeat(lr, sr.scale, 1), sr.scale, 2),
            np.stack([imresize(x, scale=sr.scale) for x in lr])]
    for i, temp in enumerate(t.sample_temperatures):
      s = sr_api.super_resolve(params, hps, sr, lr, n_samples=1, temperature=float(temp),
                               pixels=config.sr.pixels, rng=jax.random.fold_in(rng, i))
      cols.append(np.asarray(s.image[:, 0]))
    cols.append(hr)
    return tile(np.stack(cols, axis=1))

  return Task(sr.method, init, sr_api.sr_loss(hps, sr),
              sr_api.sr_eval(hps, sr, config.sr.eval_temperature, config.sr.pixels),
              labels=lambda params: sr_api.trainable_labels(params, sr), grid=grid,
              lr_factors={'finetune': sr.finetune_lr_scale},
              lr_scale=sr.scale, degradation=sr.degradation, sr=sr,
              sigma=sr.sigma if sr.degradation == 'gaussian' else None,
              scan_layout=sr_api.scan_layout(hps, sr))
