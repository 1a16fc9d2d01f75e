"""A pretrained VDVAE on disk: an orbax checkpoint of the parameters plus its hyperparameters.

  DIR/params/         orbax StandardCheckpointer tree {'encoder': ..., 'decoder': ...}
  DIR/hparams.json    HParams.to_dict()
  DIR/source.json     provenance (e.g. the PyTorch checkpoint it was converted from)
  DIR/sr.json         only for super-resolution models: their SRSettings

`load_pretrained(DIR)` is the one call that training (`config.init_from`), evaluation, sampling
and the notebooks use for a VDVAE; `vdvae_jax.sr.io.load_model(DIR)` loads either kind (the
model knows nothing of SR, so reading sr.json lives there). Writes are atomic: a temporary
sibling directory renamed into place, so an error or a kill never leaves a half-written DIR.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from typing import Any, Mapping, Optional

import jax
import numpy as np

from vdvae_jax.hparams import HParams, HParamsError

HPARAMS_FILE = 'hparams.json'
PARAMS_DIR = 'params'
SOURCE_FILE = 'source.json'
SR_FILE = 'sr.json'


class CheckpointError(ValueError):
  """A pretrained-model directory that cannot be read or does not fit the expected model."""


def save_pretrained(directory: str, params: Mapping, hps: HParams, *,
                    source: Optional[Mapping[str, Any]] = None, overwrite: bool = False,
                    sr: Any = None) -> str:
  """Write params + hparams (+ SR settings) to `directory` atomically; returns the absolute path."""
  import orbax.checkpoint as ocp
  directory = os.path.abspath(directory)
  if os.path.exists(directory) and not overwrite:
    raise CheckpointError(f'{directory}: already exists (pass overwrite=True / --overwrite)')
  parent = os.path.dirname(directory)
  os.makedirs(parent, exist_ok=True)
  tmp = tempfile.mkdtemp(prefix=f'.{os.path.basename(directory)}.tmp-', dir=parent)
  try:
    ckptr = ocp.StandardCheckpointer()
    ckptr.save(os.path.join(tmp, PARAMS_DIR), jax.tree.map(np.asarray, dict(params)))
    ckptr.wait_until_finished()
    with open(os.path.join(tmp, HPARAMS_FILE), 'w') as f:
      f.write(hps.to_json())
    with open(os.path.join(tmp, SOURCE_FILE), 'w') as f:
      json.dump(dict(source or {}), f, indent=1)
    if sr is not None:
      import dataclasses
      with open(os.path.join(tmp, SR_FILE), 'w') as f:
        json.dump(dataclasses.asdict(sr), f, indent=1)
    if os.path.exists(directory):
      shutil.rmtree(directory)
    os.rename(tmp, directory)
  except BaseException:
    shutil.rmtree(tmp, ignore_errors=True)
    raise
  return directory


def load_hparams(directory: str) -> HParams:
  path = os.path.join(directory, HPARAMS_FILE)
  if not os.path.isdir(directory):
    raise CheckpointError(f'{directory}: no such pretrained-model directory')
  if not os.path.exists(path):
    raise CheckpointError(f'{directory}: not a pretrained VDVAE (no {HPARAMS_FILE})')
  try:
    return HParams.from_json_file(path)
  except HParamsError as e:
    raise CheckpointError(str(e)) from None


def load_pretrained(directory: str, expected: Optional[HParams] = None) -> tuple[dict, HParams]:
  """(params, hps) from a directory written by `save_pretrained` or convert_torch_weights.py.

  With `expected`, the stored architecture must equal it (optimisation fields may differ).
  """
  directory = os.path.abspath(directory)
  hps = load_hparams(directory)
  if os.path.exists(os.path.join(directory, SR_FILE)):
    raise CheckpointError(f'{directory}: is a super-resolution model, not a VDVAE '
                          '(load it with vdvae_jax.sr.io.load_model)')
  if expected is not None:
    from vdvae_jax.hparams import ARCHITECTURE_FIELDS
    diff = {k: (getattr(hps, k), getattr(expected, k)) for k in ARCHITECTURE_FIELDS
            if getattr(hps, k) != getattr(expected, k)}
    if diff:
      shown = ', '.join(f'{k}: checkpoint {a!r} vs expected {b!r}' for k, (a, b) in diff.items())
      raise CheckpointError(f'{directory}: architecture differs from the expected one ({shown})')
  from vdvae_jax.model.api import abstract_params
  return restore_params(directory, abstract_params(hps)), hps


def restore_params(directory: str, want: Any) -> dict:
  """Restore DIR/params and check it has exactly the tree and shapes of `want`."""
  import orbax.checkpoint as ocp
  try:
    params = ocp.StandardCheckpointer().restore(os.path.join(directory, PARAMS_DIR))
  except Exception as e:  # orbax raises many types for unreadable checkpoints
    raise CheckpointError(f'{directory}: cannot read parameters: {type(e).__name__}: {e}') from None
  got_flat = {jax.tree_util.keystr(p): np.shape(x) for p, x in
              jax.tree_util.tree_flatten_with_path(params)[0]}
  want_flat = {jax.tree_util.keystr(p): x.shape for p, x in
               jax.tree_util.tree_flatten_with_path(want)[0]}
  if got_flat != want_flat:
    missing = sorted(set(want_flat) - set(got_flat))[:5]
    extra = sorted(set(got_flat) - set(want_flat))[:5]
    shapes = [k for k in want_flat if k in got_flat and want_flat[k] != got_flat[k]][:5]
    raise CheckpointError(f'{directory}: parameters do not fit its hparams.json '
                          f'(missing {missing}, unexpected {extra}, wrong shapes {shapes})')
  return jax.tree.map(np.asarray, params)
