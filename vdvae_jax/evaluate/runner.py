"""Evaluation runs: SR models on folders of HR images, scoring of existing SR folders, plain
super-resolution of user LR images, and the unconditional ELBO. Conventions as the SR literature
(see metrics.py): SR rounded to uint8, Y of BT.601 studio range, `scale` border pixels cropped."""
from __future__ import annotations

import itertools
import os
import sys
from typing import Callable, Optional, Sequence

import jax
import numpy as np
from tqdm import tqdm

from vdvae_jax.data.degradations import degrade, imresize, modcrop
from vdvae_jax.data.images import ImageError, list_images, load_image, save_image
from vdvae_jax.evaluate import metrics
from vdvae_jax.hparams import HParams
from vdvae_jax.train.logging import tile


def sr_sampler(params, hps: HParams, sr, *, n_samples: int, temperature: float, seed: int,
               pixels: str = 'mean', psi_temperature: Optional[float] = None,
               overlap: Optional[int] = None, batch_size: int = 8):
  """lr uint8 [h, w, 3] -> uint8 [N, h*s, w*s, 3]: tiled, blended super-resolution. Tiles are
  blended as floats (the samples' uint8 values for pixels='sample'), then rounded once."""
  from vdvae_jax.sr import api as sr_api
  from vdvae_jax.sr.tiling import super_resolve_tiled
  patch = sr.lr_size(hps)
  overlap = patch // 4 if overlap is None else overlap
  counter = itertools.count()

  def fn(tiles):
    key = jax.random.fold_in(jax.random.key(seed), next(counter))
    s = sr_api.super_resolve(params, hps, sr, tiles, n_samples=n_samples,
                             temperature=temperature, psi_temperature=psi_temperature,
                             pixels=pixels, rng=key)
    x = np.asarray(s.x, np.float64)                          # [b, N, P, P, 3] in [-1, 1]
    if pixels != 'sample':
      return (x + 1.0) * 127.5
    # the samples' uint8 values; where the model's pixel was NaN/Inf, NaN (reported by run)
    return np.where(np.isfinite(x), np.asarray(s.image, np.float64), np.nan)

  def run(lr):
    hr = super_resolve_tiled(lr, sr.scale, patch, overlap, fn, batch_size)
    bad = ~np.isfinite(hr)
    if bad.any():      # a model fault: say so, instead of casting NaN to an arbitrary grey level
      print(f'warning: the SR model gave {int(bad.any(-1).sum())} non-finite (NaN/Inf) pixels '
            f'at t = {temperature}; they are written as 0 (black) and scored as such',
            file=sys.stderr)
      hr = np.where(bad, 0.0, hr)
    return np.clip(np.round(hr), 0, 255).astype(np.uint8)
  return run


def check_lr_size(lr: np.ndarray, patch: int, scale: int, path: str) -> None:
  """One-line error for an LR image smaller than one of the model's LR patches."""
  h, w = lr.shape[:2]
  if h < patch or w < patch:
    raise ImageError(f'{path}: LR image {w}x{h} is smaller than one patch of this model '
                     f'({patch}x{patch} LR pixels at x{scale}, i.e. HR at least '
                     f'{patch * scale}x{patch * scale})')


def degrader(sr):
  """The SR model's degradation as img -> LR (exact on float images too)."""
  sigma = sr.sigma if sr.degradation == 'gaussian' else None
  return lambda img: degrade(img, sr.scale, sr.degradation, sigma)


def score_samples(samples: np.ndarray, hr: np.ndarray, lr: np.ndarray, scale: int,
                  degrade_fn: Callable, with_lpips: bool = True) -> dict:
  """Metrics of N uint8 samples [N, H, W, 3] of one image (means over the samples) + diversity."""
  out = dict(psnr_y=np.mean([metrics.psnr_y(s, hr, scale) for s in samples]),
             ssim_y=np.mean([metrics.ssim_y(s, hr, scale) for s in samples]),
             lr_psnr=np.mean([metrics.lr_consistency_psnr(s, lr, degrade_fn) for s in samples]),
             pixel_std=metrics.pixel_std(samples)[1] if len(samples) > 1 else 0.0)
  if with_lpips:
    from vdvae_jax.evaluate.lpips import lpips
    out['lpips'] = float(np.mean(lpips(samples, np.repeat(hr[None], len(samples), 0))))
    if len(samples) > 1:
      pairs = list(itertools.combinations(range(len(samples)), 2))
      out['diversity_lpips'] = float(np.mean(lpips(samples[[i for i, _ in pairs]],
                                                   samples[[j for _, j in pairs]])))
  return {k: float(v) for k, v in out.items()}


def evaluate_sr(params, hps: HParams, sr, hr_paths: Sequence[str], out_dir: str, *,
                temperatures: Sequence[float] = (0.1, 0.8), n_samples: int = 4, seed: int = 0,
                pixels: str = 'mean', psi_temperature: Optional[float] = None,
                projection: bool = False, with_lpips: bool = True, dataset: str = 'eval') -> dict:
  """Every HR image: LR by the model's degradation, N samples per temperature, metrics, grids.
  With `projection`, each temperature also gets a row 't=T +projection': the same samples after
  LR-consistency back-projection (sr/projection.py; not part of the published methods)."""
  degrade_fn = degrader(sr)
  rows: dict[str, list[dict]] = {'bicubic': []}
  os.makedirs(os.path.join(out_dir, 'grids'), exist_ok=True)
  for path in tqdm(hr_paths, desc=f'evaluate {dataset}', unit='image'):
    hr = modcrop(load_image(path), sr.scale)
    if min(hr.shape[:2]) < sr.scale:
      raise ImageError(f'{path}: image smaller than the scale {sr.scale}')
    lr = degrade_fn(hr)
    check_lr_size(lr, sr.lr_size(hps), sr.scale, path)
    bicubic = imresize(lr, scale=sr.scale)
    name = os.path.splitext(os.path.basename(path))[0]
    rows['bicubic'].append(dict(image=name, **score_samples(bicubic[None], hr, lr, sr.scale,
                                                            degrade_fn, with_lpips)))
    if projection:
      from vdvae_jax.sr.projection import back_project
      bp = np.round(back_project(bicubic, lr, sr.scale, degrade_fn)).astype(np.uint8)
      rows.setdefault('bicubic +projection', []).append(
          dict(image=name, **score_samples(bp[None], hr, lr, sr.scale, degrade_fn, with_lpips)))
    grid_cols = [np.repeat(np.repeat(lr, sr.scale, 0), sr.scale, 1), bicubic]
    for t in temperatures:
      samples = sr_sampler(params, hps, sr, n_samples=n_samples, temperature=t, seed=seed,
                           pixels=pixels, psi_temperature=psi_temperature)(lr)
      rows.setdefault(f't={t}', []).append(
          dict(image=name, **score_samples(samples, hr, lr, sr.scale, degrade_fn, with_lpips)))
      grid_cols += list(samples[:4])
      if projection:
        from vdvae_jax.sr.projection import back_project
        projected = np.stack([np.round(back_project(x, lr, sr.scale, degrade_fn))
                              for x in samples]).astype(np.uint8)
        rows.setdefault(f't={t} +projection', []).append(
            dict(image=name, **score_samples(projected, hr, lr, sr.scale, degrade_fn,
                                             with_lpips)))
    grid_cols.append(hr)
    save_image(os.path.join(out_dir, 'grids', f'{name}.png'), tile(np.stack(grid_cols)[None]))
  return summarise(rows, dataset)


def summarise(rows: dict[str, list[dict]], dataset: str) -> dict:
  means = {}
  for method, rs in rows.items():
    keys = [k for k in rs[0] if k != 'image'] if rs else []
    means[method] = {k: float(np.mean([r[k] for r in rs])) for k in keys}
  return dict(dataset=dataset, per_image=rows, mean=means)


METRIC_ORDER = ('psnr_y', 'ssim_y', 'lr_psnr', 'lpips', 'diversity_lpips', 'pixel_std')


def markdown_table(result: dict) -> str:
  """One Markdown table: a row per method / temperature, a column per metric."""
  methods = list(result['mean'])
  cols = sorted({k for m in methods for k in result['mean'][m]},
                key=lambda k: (METRIC_ORDER.index(k) if k in METRIC_ORDER else len(METRIC_ORDER), k))
  lines = [f"### {result['dataset']}", '', '| method | ' + ' | '.join(cols) + ' |',
           '|---' * (len(cols) + 1) + '|']
  for m in methods:
    vals = [result['mean'][m].get(c) for c in cols]
    lines.append(f'| {m} | ' + ' | '.join('-' if v is None else f'{v:.4f}' for v in vals) + ' |')
  return '\n'.join(lines) + '\n'


def score_folders(hr_dir: str, sr_dir: str, scale: int, *, degradation: str = 'bicubic',
                  sigma: Optional[float] = None, with_lpips: bool = True) -> dict:
  """Metrics-only mode: score SR images (e.g. from EDSR, ESRGAN) against HR images with the same
  conventions. Files are matched by name without extension; every HR image needs its SR image of
  the modcropped HR size."""
  hr_paths, sr_paths = list_images(hr_dir), list_images(sr_dir)
  key = lambda p, root: os.path.splitext(os.path.relpath(p, root))[0]  # noqa: E731
  hr_map = {key(p, hr_dir): p for p in hr_paths}
  sr_map = {key(p, sr_dir): p for p in sr_paths}
  missing = sorted(set(hr_map) - set(sr_map))
  extra = sorted(set(sr_map) - set(hr_map))
  if missing or extra:
    raise ImageError(f'{sr_dir}: file names differ from {hr_dir}: no SR image for {missing[:5]}, '
                     f'no HR image for {extra[:5]}')
  degrade_fn = lambda img: degrade(img, scale, degradation, sigma)  # noqa: E731
  rows = []
  for name in tqdm(sorted(hr_map), desc='score', unit='image'):
    hr = modcrop(load_image(hr_map[name]), scale)
    sr_img = load_image(sr_map[name])
    if sr_img.shape != hr.shape:
      raise ImageError(f'{sr_map[name]}: size {sr_img.shape[1]}x{sr_img.shape[0]} does not match '
                       f'the HR image {hr_map[name]} cropped to a multiple of {scale} '
                       f'({hr.shape[1]}x{hr.shape[0]}); is the scale right?')
    rows.append(dict(image=name, **score_samples(sr_img[None], hr, degrade_fn(hr), scale,
                                                 degrade_fn, with_lpips)))
  return summarise({os.path.basename(os.path.normpath(sr_dir)): rows},
                   os.path.basename(os.path.normpath(hr_dir)))


def super_resolve_folder(params, hps: HParams, sr, input_dir: str, output_dir: str, *,
                         n_samples: int = 1, temperature: float = 0.8, seed: int = 0,
                         pixels: str = 'mean',
                         psi_temperature: Optional[float] = None) -> list[str]:
  """Super-resolve the user's own LR images: OUTPUT/<name>_s<k>.png for k < n_samples."""
  written = []
  for path in tqdm(list_images(input_dir), desc='super-resolve', unit='image'):
    lr = load_image(path)
    check_lr_size(lr, sr.lr_size(hps), sr.scale, path)
    samples = sr_sampler(params, hps, sr, n_samples=n_samples, temperature=temperature,
                         seed=seed, pixels=pixels, psi_temperature=psi_temperature)(lr)
    rel = os.path.splitext(os.path.relpath(path, input_dir))[0]
    for k, s in enumerate(samples):
      out = os.path.join(output_dir, f'{rel}_s{k}.png')
      save_image(out, s)
      written.append(out)
  return written
