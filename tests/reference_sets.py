"""Discovery and loading of golden parity sets made by the official PyTorch code.

A set `<v>` in VDVAE_REFERENCE_DIR (default ../shared/reference) is golden_<v>.npz with
hparams_<v>.json, params_<v>.npz, model_<v>.th and optional grads_/f64_/intermediates_<v>.npz.
units_*.npz hold stand-alone DMoL and KL vectors. Nothing here knows the shipped sets' shapes.
"""
from __future__ import annotations

import functools
import glob
import json
import os
import pathlib

import numpy as np

from vdvae_jax.convert.state_dict import state_dict_to_params
from vdvae_jax.hparams import HParams

REPO = pathlib.Path(__file__).resolve().parents[1]
REFERENCE_DIR = pathlib.Path(os.environ.get('VDVAE_REFERENCE_DIR',
                                            REPO.parent / 'shared' / 'reference'))


def variants() -> list[str]:
  names = sorted(pathlib.Path(p).name[len('golden_'):-len('.npz')]
                 for p in glob.glob(str(REFERENCE_DIR / 'golden_*.npz')))
  return [v for v in names if (REFERENCE_DIR / f'params_{v}.npz').exists()]


def unit_files() -> list[str]:
  return sorted(pathlib.Path(p).name for p in glob.glob(str(REFERENCE_DIR / 'units_*.npz')))


def path(kind: str, v: str) -> pathlib.Path:
  return REFERENCE_DIR / f'{kind}_{v}.{"json" if kind in ("hparams", "checks") else "npz"}'


@functools.lru_cache(maxsize=None)
def hparams(v: str) -> HParams:
  with open(path('hparams', v)) as f:
    return HParams.from_dict(json.load(f))


@functools.lru_cache(maxsize=None)
def golden(v: str) -> dict[str, np.ndarray]:
  return dict(np.load(path('golden', v)))


@functools.lru_cache(maxsize=None)
def params(v: str) -> dict:
  return state_dict_to_params(dict(np.load(path('params', v))), hparams(v))


def optional(kind: str, v: str) -> dict[str, np.ndarray] | None:
  p = path(kind, v)
  return dict(np.load(p)) if p.exists() else None


def nhwc(a: np.ndarray) -> np.ndarray:
  """Official NCHW tensor -> our NHWC layout."""
  return np.transpose(a, (0, 2, 3, 1))


def per_block(g: dict, prefix: str, n_blocks: int, start: int = 0) -> list[np.ndarray]:
  """The `<prefix>iii` arrays (NCHW) for blocks start..n_blocks-1, as NHWC."""
  return [nhwc(g[f'{prefix}{i:03d}']) for i in range(start, n_blocks)]
