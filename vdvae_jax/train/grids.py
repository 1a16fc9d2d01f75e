"""The unconditional sample grid a training run logs (and the notebooks and eval.py show).

It lives in train, below evaluate, so that a run can log it without importing evaluation code.
"""
from __future__ import annotations

from typing import Sequence

import jax
import numpy as np

from vdvae_jax.hparams import HParams
from vdvae_jax.model import api
from vdvae_jax.train.logging import tile


def temperature_grid(params, hps: HParams, temperatures: Sequence[float], n: int,
                     rng: jax.Array, pixels: str = 'sample') -> np.ndarray:
  """One row of n unconditional samples per temperature: uint8 grid (pixels: the DMoL rule)."""
  rows = [np.asarray(api.sample(params, hps, n, temperature=float(t), pixels=pixels,
                                rng=jax.random.fold_in(rng, i)).image)
          for i, t in enumerate(temperatures)]
  return tile(np.stack(rows))
