"""Load any saved model, a VDVAE or a super-resolution model, from a pretrained-model directory.

The directory format is model/checkpoint.py's; an SR model adds DIR/sr.json (its SRSettings),
which only this layer reads: the model below knows nothing of SR.
"""
from __future__ import annotations

import json
import os
from typing import Optional

from vdvae_jax.hparams import HParams, HParamsError
from vdvae_jax.model.checkpoint import (SR_FILE, CheckpointError, load_hparams, load_pretrained,
                                        restore_params)
from vdvae_jax.sr.api import abstract_params
from vdvae_jax.sr.settings import SRSettings


def load_model(directory: str) -> tuple[dict, HParams, Optional[SRSettings]]:
  """(params, hps, sr) of any saved model; sr is None for a plain VDVAE, else its SRSettings."""
  directory = os.path.abspath(directory)
  hps = load_hparams(directory)
  sr_path = os.path.join(directory, SR_FILE)
  if not os.path.exists(sr_path):
    params, hps = load_pretrained(directory)
    return params, hps, None
  try:
    with open(sr_path) as f:
      sr = SRSettings(**json.load(f))
    sr.validate(hps)
  except (OSError, ValueError, TypeError, HParamsError) as e:
    raise CheckpointError(f'{sr_path}: invalid SR settings: {e}') from None
  return restore_params(directory, abstract_params(hps, sr)), hps, sr
