"""LR-consistency projection (iterative back-projection): an optional post-processing of SR
images, not part of either published method. Its results are reported in rows of their own.

With D the degradation (MATLAB bicubic downscaling, or blur + subsampling) and U bicubic
upscaling by the same factor, starting from the SR image x_0:
  x_{k+1} = x_k + U(y - D(x_k))                         (float, 0..255; clipped at the end)
D(U(.)) is a mild low-pass, so the LR residual y - D(x_k) shrinks geometrically; the high
frequencies the model produced (those D removes) are left as they are.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from vdvae_jax.data.degradations import imresize


def back_project(sr: np.ndarray, lr: np.ndarray, scale: int,
                 degrade_float: Callable[[np.ndarray], np.ndarray], iters: int = 10) -> np.ndarray:
  """sr [H, W, 3] (0..255, any dtype) and its LR input lr [H/s, W/s, 3] -> float64 [H, W, 3].

  degrade_float: the model's degradation on float images, without rounding (e.g.
  `lambda x: imresize(x, scale=1 / s)` for float64 x)."""
  x = np.asarray(sr, np.float64)
  y = np.asarray(lr, np.float64)
  if x.shape[:2] != (y.shape[0] * scale, y.shape[1] * scale):
    raise ValueError(f'back_project: SR {x.shape[:2]} is not x{scale} of LR {y.shape[:2]}')
  for _ in range(iters):
    x = x + imresize(y - degrade_float(x), output_shape=x.shape[:2])
  return np.clip(x, 0.0, 255.0)
