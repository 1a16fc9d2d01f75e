"""Super-resolution metrics computed the way the SR literature computes them.

Conventions (those of the MATLAB evaluation scripts used since SRCNN/EDSR, and of BasicSR):
  * The SR output is quantised to uint8 first (as if saved to PNG): float input is clipped to
    [0, 255] and rounded half up, i.e. MATLAB's `uint8(x)` for x >= 0.
  * PSNR/SSIM are measured on the luma channel Y of ITU-R BT.601 studio range, as MATLAB's
    `rgb2ycbcr`: Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255 for R, G, B in 0..255, so
    Y lies in [16, 235]. Y is kept in float64 (BasicSR); MATLAB's uint8 path would round it.
  * `scale` pixels are shaved from every border before measuring.
  * PSNR uses a peak of 255 and is computed per image (a data set's score is the mean of the
    per-image values, not the PSNR of the mean MSE).
  * SSIM is Wang et al.'s `ssim_index.m`: 11x11 Gaussian window (sigma 1.5, normalised),
    K1 = 0.01, K2 = 0.03, L = 255, population (co)variances, 'valid' filtering, mean of the map.
    No automatic downsampling (that is the later `ssim.m`, which the SR field does not use).

All functions take numpy-convertible arrays (numpy or JAX) and compute in float64 numpy.
"""
from __future__ import annotations

import math
from typing import Callable, Tuple

import numpy as np

# BT.601 studio-range luma weights of MATLAB rgb2ycbcr (for RGB in [0, 1]); they sum to 219.
_Y_WEIGHTS = np.array([65.481, 128.553, 24.966], dtype=np.float64)
_Y_OFFSET = 16.0

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03


def _check_rgb(img: np.ndarray, name: str) -> None:
  """Raises ValueError unless `img` is [..., H, W, 3]."""
  if img.ndim < 3 or img.shape[-1] != 3:
    raise ValueError(f"{name} must be an RGB image [..., H, W, 3], got shape {img.shape}")


def _check_same_shape(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> None:
  if a.shape != b.shape:
    raise ValueError(f"{name_a} and {name_b} differ in shape: {name_a} {a.shape} vs {name_b} {b.shape}")


def _require_uint8(img, name: str) -> np.ndarray:
  """Returns `img` as a numpy uint8 array; TypeError for any other dtype (references only)."""
  img = np.asarray(img)
  if img.dtype != np.uint8:
    raise TypeError(f"{name} must be uint8 (0..255), got dtype {img.dtype}")
  return img


def to_uint8(img, name: str = "image") -> np.ndarray:
  """Quantises an output image as the SR field does: uint8 passes, float is clipped and rounded.

  Float input is read on the 0..255 scale (not [0, 1]); it is clipped to [0, 255] and rounded
  half up (MATLAB `uint8()`). Other integer dtypes and non-finite values raise.
  """
  img = np.asarray(img)
  if img.dtype == np.uint8:
    return img
  if not np.issubdtype(img.dtype, np.floating):
    raise TypeError(f"{name} must be uint8 or float on the 0..255 scale, got dtype {img.dtype}")
  if not np.all(np.isfinite(img)):
    raise ValueError(f"{name} contains NaN or inf")
  img = np.clip(img.astype(np.float64), 0.0, 255.0)
  return np.floor(img + 0.5).astype(np.uint8)


def rgb_to_y(img) -> np.ndarray:
  """MATLAB `rgb2ycbcr` luma of a uint8 RGB image: [..., H, W, 3] uint8 -> [..., H, W] float64 in [16, 235]."""
  img = _require_uint8(img, "img")
  _check_rgb(img, "img")
  rgb = img.astype(np.float64)  # [..., H, W, 3]
  return _Y_OFFSET + (rgb @ _Y_WEIGHTS) / 255.0  # [..., H, W]


def shave(img, border: int) -> np.ndarray:
  """Crops `border` pixels from each side of an image [..., H, W, C] -> [..., H - 2b, W - 2b, C]."""
  img = np.asarray(img)
  if img.ndim < 3:
    raise ValueError(f"shave expects an image [..., H, W, C], got shape {img.shape}")
  border = int(border)
  if border < 0:
    raise ValueError(f"border must be >= 0, got {border}")
  h, w = img.shape[-3], img.shape[-2]
  if 2 * border >= min(h, w):
    raise ValueError(f"border {border} leaves nothing of an image of size {h}x{w} (shape {img.shape})")
  if border == 0:
    return img
  return img[..., border:h - border, border:w - border, :]


def psnr(a, b, data_range: float = 255.0) -> float:
  """PSNR in dB between two same-shape arrays: 10 log10(data_range^2 / MSE); inf if identical."""
  a, b = np.asarray(a), np.asarray(b)
  _check_same_shape(a, b, "a", "b")
  if a.size == 0:
    raise ValueError("psnr of empty arrays")
  diff = a.astype(np.float64) - b.astype(np.float64)
  mse = float(np.mean(diff * diff))
  if mse == 0.0:
    return math.inf
  return 10.0 * math.log10(float(data_range) ** 2 / mse)


def _gaussian_window(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA) -> np.ndarray:
  """Normalised 1-D Gaussian [size]; its outer product is MATLAB fspecial('gaussian', size, sigma)."""
  x = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
  w = np.exp(-(x * x) / (2.0 * sigma * sigma))
  return w / w.sum()


def _filter_valid(x: np.ndarray, w: np.ndarray) -> np.ndarray:
  """Separable 'valid' correlation of [..., H, W] with w (x) w -> [..., H - k + 1, W - k + 1]."""
  k = w.shape[0]
  h, wd = x.shape[-2], x.shape[-1]
  rows = sum(w[i] * x[..., i:h - k + 1 + i, :] for i in range(k))  # [..., H', W]
  return sum(w[i] * rows[..., :, i:wd - k + 1 + i] for i in range(k))  # [..., H', W']


def ssim_map(a, b, data_range: float = 255.0) -> np.ndarray:
  """SSIM map of two grey images [..., H, W] (Wang et al. ssim_index.m) -> [..., H - 10, W - 10]."""
  a = np.asarray(a, dtype=np.float64)
  b = np.asarray(b, dtype=np.float64)
  _check_same_shape(a, b, "a", "b")
  if a.ndim < 2 or min(a.shape[-2:]) < SSIM_WINDOW:
    raise ValueError(f"SSIM needs images of at least {SSIM_WINDOW}x{SSIM_WINDOW}, got shape {a.shape}")
  w = _gaussian_window()
  c1 = (SSIM_K1 * data_range) ** 2
  c2 = (SSIM_K2 * data_range) ** 2
  mu_a, mu_b = _filter_valid(a, w), _filter_valid(b, w)
  mu_aa, mu_bb, mu_ab = mu_a * mu_a, mu_b * mu_b, mu_a * mu_b
  var_a = _filter_valid(a * a, w) - mu_aa
  var_b = _filter_valid(b * b, w) - mu_bb
  cov_ab = _filter_valid(a * b, w) - mu_ab
  return ((2.0 * mu_ab + c1) * (2.0 * cov_ab + c2)) / ((mu_aa + mu_bb + c1) * (var_a + var_b + c2))


def ssim(a, b, data_range: float = 255.0) -> float:
  """Mean SSIM of two grey images [H, W] (mean over the 'valid' map)."""
  return float(np.mean(ssim_map(a, b, data_range)))


def _prepare_pair(sr, hr, scale: int) -> Tuple[np.ndarray, np.ndarray]:
  """Quantises SR, checks both are [H, W, 3] of one shape, shaves `scale` pixels -> two uint8 [h, w, 3]."""
  sr = to_uint8(sr, "sr")
  hr = _require_uint8(hr, "hr")
  if sr.ndim != 3:
    raise ValueError(f"sr must be one image [H, W, 3], got shape {sr.shape}")
  _check_rgb(sr, "sr")
  _check_rgb(hr, "hr")
  _check_same_shape(sr, hr, "sr", "hr")
  return shave(sr, scale), shave(hr, scale)


def psnr_y(sr, hr, scale: int) -> float:
  """PSNR (dB, peak 255) on studio-range Y after shaving `scale` pixels; SR [H, W, 3] quantised to uint8."""
  sr, hr = _prepare_pair(sr, hr, scale)
  return psnr(rgb_to_y(sr), rgb_to_y(hr), 255.0)


def ssim_y(sr, hr, scale: int) -> float:
  """SSIM (ssim_index.m, L = 255) on studio-range Y after shaving `scale` pixels; SR quantised to uint8."""
  sr, hr = _prepare_pair(sr, hr, scale)
  return ssim(rgb_to_y(sr), rgb_to_y(hr), 255.0)


def psnr_rgb(sr, hr, scale: int) -> float:
  """PSNR (dB, peak 255) over the three RGB channels after shaving `scale` pixels."""
  sr, hr = _prepare_pair(sr, hr, scale)
  return psnr(sr, hr, 255.0)


def lr_consistency_psnr(sr, lr, degrade: Callable[[np.ndarray], np.ndarray]) -> float:
  """PSNR (RGB, peak 255) between degrade(SR) and the LR input: how well SR explains its input.

  SR [H, W, 3] is quantised to uint8 and passed to `degrade` (e.g. MATLAB-bicubic downscaling);
  a float result is quantised the same way (MATLAB imresize of uint8 returns uint8). LR must be uint8.
  """
  sr = to_uint8(sr, "sr")
  lr = _require_uint8(lr, "lr")
  _check_rgb(sr, "sr")
  _check_rgb(lr, "lr")
  down = to_uint8(degrade(sr), "degrade(sr)")
  _check_same_shape(down, lr, "degrade(sr)", "lr")
  return psnr(down, lr, 255.0)


def pixel_std(samples) -> Tuple[np.ndarray, float]:
  """Diversity map of N samples [N, H, W, 3]: per-pixel std over N (ddof 0), mean over channels.

  Returns the map [H, W] (units of the input, e.g. 0..255) and its mean.
  """
  samples = np.asarray(samples)
  if samples.ndim != 4 or samples.shape[-1] != 3:
    raise ValueError(f"samples must be [N, H, W, 3], got shape {samples.shape}")
  if samples.shape[0] < 2:
    raise ValueError(f"pixel_std needs at least 2 samples, got {samples.shape[0]}")
  std = samples.astype(np.float64).std(axis=0)  # [H, W, 3]
  std_map = std.mean(axis=-1)  # [H, W]
  return std_map, float(std_map.mean())


def mean_pairwise(fn: Callable[[np.ndarray, np.ndarray], float], samples) -> float:
  """Mean of fn(samples[i], samples[j]) over all pairs i < j of N >= 2 samples [N, ...]."""
  n = len(samples)
  if n < 2:
    raise ValueError(f"mean_pairwise needs at least 2 samples, got {n}")
  values = [float(fn(samples[i], samples[j])) for i in range(n) for j in range(i + 1, n)]
  return float(np.mean(values))
