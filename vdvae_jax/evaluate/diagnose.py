"""Where an SR model loses against bicubic: the gap taken apart on whole photographs.

Every row is a whole image, tiled as eval.py tiles it, scored with the same metrics:
  bicubic               MATLAB bicubic of the LR image; `bicubic, tiled` runs it tile by tile
                        through the SR tiler (what tiling and blending cost).
  SR pixels=<rule>      the SR model at `temperature`, same latents for every pixel rule
                        (what sampling the DMoL costs against its mean and its mode).
  VDVAE reconstruction  the pretrained VDVAE decoding HR patches from their own posterior means
                        (pixels=mean): no SR method on this VDVAE can beat it.
  VDVAE top-ky oracle   diverse SR only: posterior means of the top ky groups, the rest from the
                        prior at `temperature`: what a perfect q_psi would give.
Per row: PSNR-Y, SSIM-Y, LR-PSNR and the mean of each colour channel minus the HR image's (a
colour or level shift shows there).
"""
from __future__ import annotations

from typing import Sequence

import jax
import numpy as np
from tqdm import tqdm

from vdvae_jax.data.degradations import imresize, modcrop
from vdvae_jax.data.images import load_image
from vdvae_jax.data.preprocess import preprocess
from vdvae_jax.evaluate import metrics
from vdvae_jax.evaluate.runner import degrader, sr_sampler, summarise
from vdvae_jax.hparams import HParams
from vdvae_jax.model import api
from vdvae_jax.sr.tiling import super_resolve_tiled


def _row(img: np.ndarray, hr: np.ndarray, lr: np.ndarray, scale: int, degrade_fn) -> dict:
  img = np.clip(np.round(img), 0, 255).astype(np.uint8)
  shift = img.reshape(-1, 3).astype(np.float64).mean(0) - hr.reshape(-1, 3).astype(np.float64).mean(0)
  return dict(psnr_y=metrics.psnr_y(img, hr, scale), ssim_y=metrics.ssim_y(img, hr, scale),
              lr_psnr=metrics.lr_consistency_psnr(img, lr, degrade_fn),
              shift_r=shift[0], shift_g=shift[1], shift_b=shift[2])


def _hr_tiled(hr: np.ndarray, patch: int, fn) -> np.ndarray:
  """A function of HR patches [b, p, p, 3] -> float [b, p, p, 3] over a whole HR image."""
  return super_resolve_tiled(hr, 1, patch, patch // 4, lambda t: np.asarray(fn(t))[:, None])[0]


def diagnose_sr(params, hps: HParams, sr, hr_paths: Sequence[str], *, vdvae_params=None,
                temperature: float = 0.1, seed: int = 0) -> dict:
  """Rows as in the module docstring, per image and averaged (summarise's format)."""
  degrade_fn = degrader(sr)
  patch, r = sr.lr_size(hps), hps.image_size
  rows: dict[str, list[dict]] = {}

  def add(name, img, hr, lr, image):
    rows.setdefault(name, []).append(dict(image=image, **_row(img, hr, lr, sr.scale, degrade_fn)))

  def to_float(x):
    return (np.asarray(x, np.float64) + 1.0) * 127.5

  def top_groups_kept(k):
    """HR patches -> decoded from their top k posterior means, the rest from the prior."""
    def fn(tiles):
      x, _ = preprocess(jax.numpy.asarray(tiles), hps)
      z = api.encode(vdvae_params, hps, x)[:k]
      return to_float(api.sample(vdvae_params, hps, len(tiles), latents=z, pixels='mean',
                                 temperature=temperature, rng=jax.random.key(seed)).x)
    return fn

  for path in tqdm(hr_paths, desc='diagnose', unit='image'):
    name = path.rsplit('/', 1)[-1].rsplit('.', 1)[0]
    hr = modcrop(load_image(path), sr.scale)
    lr = degrade_fn(hr)
    add('bicubic', imresize(lr, scale=sr.scale), hr, lr, name)
    bic = super_resolve_tiled(lr, sr.scale, patch, patch // 4,
                              lambda t: np.stack([imresize(x, scale=sr.scale) for x in t])[:, None])
    add('bicubic, tiled', bic[0], hr, lr, name)
    for pixels in ('sample', 'mean', 'mode'):
      out = sr_sampler(params, hps, sr, n_samples=1, temperature=temperature, seed=seed,
                       pixels=pixels)(lr)
      add(f'SR t={temperature} pixels={pixels}', out[0], hr, lr, name)
    if vdvae_params is not None:
      add('VDVAE reconstruction (posterior mean, pixels=mean)', _hr_tiled(hr, r, top_groups_kept(hps.n_dec_blocks)),
          hr, lr, name)
      if sr.method == 'diverse':
        add(f'VDVAE top-{sr.ky} oracle, t={temperature}, pixels=mean', _hr_tiled(hr, r, top_groups_kept(sr.ky)),
            hr, lr, name)
  return summarise(rows, 'diagnose')


METRICS = ('psnr_y', 'ssim_y', 'lr_psnr', 'shift_r', 'shift_g', 'shift_b')


def markdown(result: dict) -> str:
  """One row per diagnosis row: means over the images."""
  lines = ['| row | ' + ' | '.join(METRICS) + ' |', '|---' * (len(METRICS) + 1) + '|']
  for name, m in result['mean'].items():
    lines.append(f'| {name} | ' + ' | '.join(f'{m[k]:.2f}' for k in METRICS) + ' |')
  return '\n'.join(lines) + '\n'
