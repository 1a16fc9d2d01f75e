"""Making LR images from HR images: modcrop, MATLAB-compatible bicubic imresize, Gaussian blur +
subsampling, in numpy and (same weights) in JAX.

Both degradations are separable: along each axis, output sample o is sum_p w[o, p] * x[idx[o, p]]
with a weight table w [out, P] and an index table idx [out, P] (0-based, already mirrored into
the image). The numpy functions apply these tables by gathering; the JAX functions turn the same
tables into dense [out, in] matrices and use `jnp.einsum`, so they work inside `jit` (shapes and
scales must be static).

Bicubic (`imresize`) follows MATLAB's `imresize(A, scale)` / `imresize(A, [rows cols])` with the
default 'bicubic' method and antialiasing:
  kernel       Keys cubic, a = -0.5, support [-2, 2].
  antialias    when scale < 1 the kernel is h(x) = scale * k(scale * x), width 4 / scale.
  taps         for output o = 1..out (1-based): u = o / scale + 0.5 * (1 - 1 / scale),
               left = floor(u - width / 2), P = ceil(width) + 2 taps at left .. left + P - 1,
               weights h(u - j) normalised to sum 1.
  borders      symmetric: index j is mirrored through the sequence 1..n, n..1 (period 2n).
  unused taps  columns of the weight table that are zero for every output are dropped.
  size         out = ceil(scale * n) when only `scale` is given (as MATLAB: pass `output_shape`
               for exact control), scale = out / n when only `output_shape` is given.
  order        the axis with the smaller scale is resized first (rows first on a tie).
  uint8        each axis pass is computed in float64, then rounded half away from zero and clipped
               to [0, 255] (MATLAB's imresizemex returns the input's class after every pass).
  float        no rounding; output has the input's float dtype.

Gaussian (`gaussian_blur_downsample`): the image is blurred with the separable normalised kernel
g[k] ~ exp(-k^2 / (2 sigma^2)), k = -r..r, ksize = 2r + 1 (default 2 * ceil(3 * sigma) + 1), with
symmetric padding (the edge pixel repeated, as numpy's 'symmetric' / MATLAB's 'symmetric'); then
every `scale`-th pixel is kept starting at offset (scale - 1) // 2, i.e. LR pixel o is the blurred
HR pixel o * scale + (scale - 1) // 2 (the centre of its scale x scale block for odd scales, half a
pixel up-left of it for even ones). Output size n // scale. uint8 input is rounded (half up) and
clipped once, at the end.
"""
from __future__ import annotations

import functools
import math
from typing import Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

Table = tuple[np.ndarray, np.ndarray]  # weights [out, P] float64, indices [out, P] int64


# ---------------------------------------------------------------------------------------------
# Weight tables.


def cubic(x: np.ndarray) -> np.ndarray:
  """Keys cubic convolution kernel with a = -0.5 (MATLAB's `cubic`)."""
  ax = np.abs(x)
  ax2, ax3 = ax * ax, ax * ax * ax
  return ((1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1)
          + (-0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0) * ((ax > 1) & (ax <= 2)))


def _mirror(idx: np.ndarray, n: int) -> np.ndarray:
  """0-based indices mirrored symmetrically into [0, n): ..., 1, 0 | 0, 1, ..., n-1 | n-1, ..."""
  period = np.concatenate([np.arange(n), np.arange(n - 1, -1, -1)])  # [2n]
  return period[np.mod(idx, 2 * n)]


@functools.lru_cache(maxsize=256)
def contributions(in_length: int, out_length: int, scale: float,
                  antialiasing: bool = True) -> Table:
  """MATLAB `imresize` contributions for one axis: weights [out, P], 0-based indices [out, P]."""
  if scale < 1 and antialiasing:
    h = lambda x: scale * cubic(scale * x)
    width = 4.0 / scale
  else:
    h = cubic
    width = 4.0
  x = np.arange(1, out_length + 1, dtype=np.float64)  # [out], 1-based output positions
  u = x / scale + 0.5 * (1.0 - 1.0 / scale)  # [out], input-space positions (1-based)
  left = np.floor(u - width / 2.0)  # [out]
  taps = int(math.ceil(width)) + 2
  idx = left[:, None] + np.arange(taps)[None, :]  # [out, P], 1-based
  w = h(u[:, None] - idx)  # [out, P]
  w = w / w.sum(axis=1, keepdims=True)
  idx = _mirror(idx.astype(np.int64) - 1, in_length)  # [out, P], 0-based
  keep = np.any(w != 0, axis=0)  # drop taps that are zero for every output
  w, idx = w[:, keep], idx[:, keep]
  w.setflags(write=False)
  idx.setflags(write=False)
  return w, idx


def gaussian_kernel(sigma: float, ksize: Optional[int] = None) -> np.ndarray:
  """Normalised 1-D Gaussian [ksize]; ksize odd, default 2 * ceil(3 * sigma) + 1."""
  if not sigma > 0:
    raise ValueError(f'sigma must be > 0, got {sigma}')
  if ksize is None:
    ksize = int(2 * math.ceil(3 * sigma) + 1)
  if ksize < 1 or ksize % 2 != 1:
    raise ValueError(f'ksize must be a positive odd integer, got {ksize}')
  k = np.arange(ksize, dtype=np.float64) - ksize // 2  # [ksize], -r..r
  g = np.exp(-k * k / (2.0 * sigma * sigma))
  return g / g.sum()


@functools.lru_cache(maxsize=256)
def gaussian_table(in_length: int, scale: int, sigma: float,
                   ksize: Optional[int] = None) -> Table:
  """Blur + subsample for one axis: weights [out, ksize], 0-based indices [out, ksize]."""
  g = gaussian_kernel(sigma, ksize)  # [K]
  r = g.size // 2
  out_length = in_length // scale
  centres = np.arange(out_length) * scale + (scale - 1) // 2  # [out]
  idx = _mirror(centres[:, None] + np.arange(-r, r + 1)[None, :], in_length)  # [out, K]
  w = np.broadcast_to(g, idx.shape).copy()  # [out, K]
  w.setflags(write=False)
  idx.setflags(write=False)
  return w, idx


@functools.lru_cache(maxsize=32)
def _dense(table_key: tuple, in_length: int) -> np.ndarray:
  """Dense [out, in] float64 matrix of a weight table (repeated mirrored indices are summed)."""
  kind, args = table_key
  w, idx = contributions(*args) if kind == 'bicubic' else gaussian_table(*args)
  m = np.zeros((w.shape[0], in_length), np.float64)
  np.add.at(m, (np.repeat(np.arange(w.shape[0]), w.shape[1]), idx.ravel()), w.ravel())
  m.setflags(write=False)
  return m


# ---------------------------------------------------------------------------------------------
# Plans: which table along which axis, in which order.


def _resize_plan(hw: Sequence[int], scale: Optional[float | Sequence[float]],
                 output_shape: Optional[Sequence[int]]) -> list[tuple[int, tuple]]:
  """[(axis 0=H / 1=W, ('bicubic', contributions args))] in MATLAB order."""
  if scale is None and output_shape is None:
    raise ValueError('imresize needs scale or output_shape')
  if scale is not None:
    scales = [float(s) for s in (scale if isinstance(scale, (tuple, list)) else (scale, scale))]
    if len(scales) != 2 or min(scales) <= 0:
      raise ValueError(f'scale must be positive (one or two values), got {scale}')
  if output_shape is not None:
    out = [int(s) for s in output_shape]
    if len(out) != 2 or min(out) < 1:
      raise ValueError(f'output_shape must be two positive ints, got {output_shape}')
    if scale is None:
      scales = [o / n for o, n in zip(out, hw)]
  else:
    out = [int(math.ceil(s * n)) for s, n in zip(scales, hw)]
  if min(hw) < 1:
    raise ValueError(f'cannot resize an empty image of size {tuple(hw)}')
  order = sorted(range(2), key=lambda a: scales[a])  # stable: rows first on a tie
  return [(a, ('bicubic', (int(hw[a]), out[a], scales[a], True))) for a in order]


def _gaussian_plan(hw: Sequence[int], scale: int, sigma: float,
                   ksize: Optional[int]) -> list[tuple[int, tuple]]:
  scale = _check_int_scale(scale)
  if min(hw) < scale:
    raise ValueError(f'image of size {hw[0]}x{hw[1]} is smaller than the scale {scale}')
  gaussian_kernel(sigma, ksize)  # validates sigma and ksize
  return [(a, ('gaussian', (int(hw[a]), scale, float(sigma), ksize))) for a in (0, 1)]


def _check_int_scale(scale: int) -> int:
  if int(scale) != scale or scale < 1:
    raise ValueError(f'scale must be a positive integer, got {scale}')
  return int(scale)


# ---------------------------------------------------------------------------------------------
# numpy application.


def _round_uint8(x: np.ndarray) -> np.ndarray:
  """MATLAB's double -> uint8: round half away from zero, saturate to [0, 255]."""
  return np.floor(np.clip(x, 0.0, 255.0) + 0.5).astype(np.uint8)


def _apply_np(img: np.ndarray, plan: list[tuple[int, tuple]], round_each_pass: bool) -> np.ndarray:
  """Apply the plan's tables to an [H, W] or [H, W, C] array (uint8 or float)."""
  img = np.asarray(img)
  if img.ndim not in (2, 3):
    raise ValueError(f'expected an [H, W] or [H, W, C] image, got shape {img.shape}')
  is_uint8 = img.dtype == np.uint8
  if not (is_uint8 or np.issubdtype(img.dtype, np.floating)):
    raise TypeError(f'expected a uint8 or float image, got {img.dtype}')
  x = img.astype(np.float64)
  for axis, (kind, args) in plan:
    w, idx = contributions(*args) if kind == 'bicubic' else gaussian_table(*args)
    xa = np.moveaxis(x, axis, 0)  # [n, ...]
    acc = np.zeros((w.shape[0],) + xa.shape[1:], np.float64)  # [out, ...]
    extra = (None,) * (xa.ndim - 1)
    for p in range(w.shape[1]):
      acc += w[(slice(None), p) + extra] * xa[idx[:, p]]
    x = np.moveaxis(acc, 0, axis)
    if is_uint8 and round_each_pass:
      x = _round_uint8(x).astype(np.float64)
  if is_uint8:
    return _round_uint8(x)
  return x.astype(img.dtype)


def imresize(img: np.ndarray, scale: Optional[float | Sequence[float]] = None,
             output_shape: Optional[Sequence[int]] = None) -> np.ndarray:
  """MATLAB-compatible bicubic `imresize` of [H, W] or [H, W, C] (see the module docstring).

  `scale` multiplies the size (0.25 shrinks by 4); with `output_shape` (rows, cols) only, the scale
  is output / input per axis. If both are given, `scale` sets the kernels, `output_shape` the size.
  uint8 in -> uint8 out (rounded as MATLAB); float in -> float out (not rounded).
  """
  img = np.asarray(img)
  return _apply_np(img, _resize_plan(img.shape[:2], scale, output_shape), round_each_pass=True)


def gaussian_blur_downsample(img: np.ndarray, scale: int, sigma: float,
                             ksize: Optional[int] = None) -> np.ndarray:
  """Gaussian blur (symmetric padding) then keep pixels (scale - 1) // 2 + k * scale.

  [H, W(, C)] -> [H // scale, W // scale(, C)]; uint8 in -> uint8 out, float in -> float out.
  """
  img = np.asarray(img)
  return _apply_np(img, _gaussian_plan(img.shape[:2], scale, sigma, ksize),
                   round_each_pass=False)


# ---------------------------------------------------------------------------------------------
# JAX application (dense matrices, jit-friendly; float only).


def _apply_jax(x: jax.Array, plan: list[tuple[int, tuple]]) -> jax.Array:
  """Apply the plan to x [..., H, W, C] with dense matrices; dtype of x is kept."""
  if not jnp.issubdtype(x.dtype, jnp.floating):
    raise TypeError(f'expected a float array, got {x.dtype}')
  hw = x.shape[-3:-1]
  for axis, key in plan:
    m = jnp.asarray(_dense(key, hw[axis]), dtype=x.dtype)  # [out, in]
    spec = '...hwc,oh->...owc' if axis == 0 else '...hwc,ow->...hoc'
    x = jnp.einsum(spec, x, m, precision=jax.lax.Precision.HIGHEST)
  return x


def imresize_jax(x: jax.Array, scale: Optional[float | Sequence[float]] = None,
                 output_shape: Optional[Sequence[int]] = None) -> jax.Array:
  """Bicubic `imresize` of float x [..., H, W, C] with the weights of `imresize` (no rounding).

  Usable inside `jit`: x's shape and `scale` / `output_shape` must be static.
  """
  if x.ndim < 3:
    raise ValueError(f'expected [..., H, W, C], got shape {x.shape}')
  return _apply_jax(x, _resize_plan(x.shape[-3:-1], scale, output_shape))


def gaussian_blur_downsample_jax(x: jax.Array, scale: int, sigma: float,
                                 ksize: Optional[int] = None) -> jax.Array:
  """`gaussian_blur_downsample` of float x [..., H, W, C] with the same weights, jit-friendly."""
  if x.ndim < 3:
    raise ValueError(f'expected [..., H, W, C], got shape {x.shape}')
  return _apply_jax(x, _gaussian_plan(x.shape[-3:-1], scale, sigma, ksize))


# ---------------------------------------------------------------------------------------------
# HR -> LR.


def modcrop(img: np.ndarray, scale: int) -> np.ndarray:
  """Crop [H, W(, C)] to H - H % scale, W - W % scale, keeping the top-left corner."""
  scale = _check_int_scale(scale)
  h, w = img.shape[:2]
  return img[:h - h % scale, :w - w % scale]


def degrade(img: np.ndarray, scale: int, kind: str = 'bicubic', sigma: Optional[float] = None,
            ksize: Optional[int] = None) -> np.ndarray:
  """HR [H, W(, C)] -> LR [H // scale, W // scale(, C)]: modcrop, then 'bicubic' (MATLAB
  imresize by 1 / scale) or 'gaussian' (blur with `sigma`, `ksize`, then subsample)."""
  scale = _check_int_scale(scale)
  img = np.asarray(img)
  if img.ndim not in (2, 3):
    raise ValueError(f'expected an [H, W] or [H, W, C] image, got shape {img.shape}')
  h, w = img.shape[:2]
  if h < scale or w < scale:
    raise ValueError(f'image of size {h}x{w} is smaller than the scale {scale}')
  hr = modcrop(img, scale)
  if kind == 'bicubic':
    return imresize(hr, scale=1.0 / scale, output_shape=(hr.shape[0] // scale,
                                                         hr.shape[1] // scale))
  if kind == 'gaussian':
    if sigma is None:
      raise ValueError("kind='gaussian' needs sigma")
    return gaussian_blur_downsample(hr, scale, sigma, ksize)
  raise ValueError(f"kind must be 'bicubic' or 'gaussian', got {kind!r}")
