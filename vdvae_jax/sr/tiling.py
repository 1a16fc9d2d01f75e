"""Super-resolving images of any size with a patch model: overlapping tiles, blended.

The LR image [h, w, 3] is covered by p x p LR tiles (p = the model's LR size) at a stride of
p - overlap, the last tile flush with the border; an image smaller than p is first padded by
reflection. Each HR tile (p*s x p*s) is weighted by a window that ramps linearly over the overlap
(the tiles' centres dominate, borders fade out) and the weighted tiles are averaged.
"""
from __future__ import annotations

from typing import Callable

import numpy as np


def tile_starts(length: int, patch: int, overlap: int) -> list[int]:
  """Start offsets covering [0, length) with tiles of `patch`, adjacent tiles sharing >= overlap."""
  if length <= patch:
    return [0]
  if not 0 <= overlap < patch:
    raise ValueError(f'overlap must be in [0, {patch}), got {overlap}')
  stride = patch - overlap
  starts = list(range(0, length - patch, stride))
  starts.append(length - patch)
  return starts


def blend_window(size: int, ramp: int) -> np.ndarray:
  """[size, size] weights: 1 inside, a linear ramp (never 0) over `ramp` pixels at each edge."""
  w = np.ones(size, np.float64)
  if ramp > 0:
    r = (np.arange(ramp) + 0.5) / ramp
    w[:ramp] = r
    w[-ramp:] = np.minimum(w[-ramp:], r[::-1])
  return np.outer(w, w)


def super_resolve_tiled(lr: np.ndarray, scale: int, patch: int, overlap: int,
                        fn: Callable[[np.ndarray], np.ndarray], batch_size: int = 16,
                        progress=None) -> np.ndarray:
  """lr uint8 [h, w, 3] -> HR float [N, h*s, w*s, 3] (0..255) for a patch function
  fn(uint8 [b, p, p, 3]) -> float/uint8 [b, N, p*s, p*s, 3] (N samples per patch)."""
  h, w = lr.shape[:2]
  ph, pw = max(0, patch - h), max(0, patch - w)
  if ph or pw:
    mode = 'reflect' if (h > ph and w > pw) else 'symmetric'
    lr = np.pad(lr, ((0, ph), (0, pw), (0, 0)), mode=mode)
  H, W = lr.shape[:2]
  ys, xs = tile_starts(H, patch, overlap), tile_starts(W, patch, overlap)
  coords = [(y, x) for y in ys for x in xs]
  tiles = np.stack([lr[y:y + patch, x:x + patch] for y, x in coords])
  window = blend_window(patch * scale, overlap * scale // 2)[None, :, :, None]
  acc = weight = None
  for i in range(0, len(coords), batch_size):
    out = np.asarray(fn(tiles[i:i + batch_size]), np.float64)       # [b, N, P, P, 3]
    if acc is None:
      acc = np.zeros((out.shape[1], H * scale, W * scale, 3))
      weight = np.zeros((1, H * scale, W * scale, 1))
    for j, (y, x) in enumerate(coords[i:i + batch_size]):
      sl = (slice(None), slice(y * scale, (y + patch) * scale), slice(x * scale, (x + patch) * scale))
      acc[sl] += out[j] * window
      weight[sl] += window
    if progress is not None:
      progress(min(i + batch_size, len(coords)), len(coords))
  hr = acc / weight
  return hr[:, :h * scale, :w * scale]
