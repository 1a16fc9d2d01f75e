"""Figures for notebooks and reports: sample grids over temperatures, per-block KL, latent
resampling (keep the top k groups of a real image, redraw the rest), SR panels with a std map."""
from __future__ import annotations

from typing import Sequence

import jax
import numpy as np

from vdvae_jax.data.preprocess import preprocess
from vdvae_jax.hparams import HParams
from vdvae_jax.model import api
from vdvae_jax.train.grids import temperature_grid  # noqa: F401  (re-exported for notebooks)
from vdvae_jax.train.logging import tile


def kl_per_block(params, hps: HParams, images_u8: np.ndarray) -> np.ndarray:
  """Mean KL (nats per image) of every decoder block on these images (posterior mean)."""
  x, t = preprocess(jax.numpy.asarray(images_u8), hps)
  return np.asarray(api.elbo(params, hps, x, t, posterior='mean').kl_per_block).mean(axis=1)


def plot_kl(kl: np.ndarray, hps: HParams):
  """Bar plot of per-block KL, blocks labelled by resolution."""
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  fig, ax = plt.subplots(figsize=(8, 3))
  res = [r for r, _ in hps.decoder_layers]
  ax.bar(np.arange(len(kl)), kl, color=[f'C{int(np.log2(r)) % 10}' for r in res])
  ax.set_xlabel('decoder block (colour: resolution)')
  ax.set_ylabel('KL (nats / image)')
  ax.set_yscale('symlog', linthresh=1e-2)
  fig.tight_layout()
  return fig


def resampling_grid(params, hps: HParams, images_u8: np.ndarray, ks: Sequence[int],
                    temperature: float, rng: jax.Array, n: int = 3,
                    pixels: str = 'sample') -> np.ndarray:
  """Per image: the original, then for each k in ks, n samples that keep the image's top k
  latent groups (posterior means) and redraw the rest from the prior at `temperature`."""
  x, _ = preprocess(jax.numpy.asarray(images_u8), hps)
  z = api.encode(params, hps, x)
  rows = []
  for b in range(images_u8.shape[0]):
    row = [images_u8[b]]
    for j, k in enumerate(ks):
      lat = [l[b:b + 1].repeat(n, axis=0) for l in z[:k]]
      s = api.sample(params, hps, n, temperature=temperature, latents=lat, pixels=pixels,
                     rng=jax.random.fold_in(rng, b * 1000 + j))
      row += list(np.asarray(s.image))
    rows.append(np.stack(row))
  return tile(np.stack(rows))


def std_map(samples: np.ndarray) -> np.ndarray:
  """Per-pixel std over samples [N, H, W, 3] (mean over colours) as a uint8 image (max -> 255)."""
  s = samples.astype(np.float64).std(axis=0).mean(axis=-1)
  s = np.round(255 * s / max(s.max(), 1e-9)).astype(np.uint8)
  return np.repeat(s[..., None], 3, axis=-1)
