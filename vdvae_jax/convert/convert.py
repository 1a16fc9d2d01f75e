"""The conversion pipeline behind convert_torch_weights.py.

load (weights_only) -> strict key/shape accounting -> layout conversion with a progress bar ->
atomic orbax write -> reload and compare with the source tensors -> parameter count and bits/dim
of the converted model on a fixed built-in photograph.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Optional

import numpy as np
from tqdm import tqdm

from vdvae_jax.convert.state_dict import (StateDictMismatch, check_state_dict, num_parameters,
                                          params_to_state_dict, state_dict_entries)
from vdvae_jax.convert.torch_checkpoint import (ConversionError, infer_hparams,
                                                load_torch_state_dict, mismatch_hint)
from vdvae_jax.hparams import HParams, HParamsError
from vdvae_jax.model.checkpoint import load_pretrained, save_pretrained


@dataclasses.dataclass
class ConversionReport:
  output: str
  hps: HParams
  num_parameters: int
  inferred_notes: list[str]
  bits_per_dim: Optional[float]


def builtin_image(size: int) -> np.ndarray:
  """scikit-image's astronaut photograph (ships in the wheel), MATLAB-bicubic resized: [1,s,s,3]."""
  from skimage import data
  from vdvae_jax.data.degradations import imresize
  img = data.astronaut()                                  # [512, 512, 3] uint8
  if img.shape[0] != size:
    img = imresize(img, output_shape=(size, size))
  return img[None]


def bits_per_dim_on_builtin(params, hps: HParams) -> float:
  import jax.numpy as jnp
  from vdvae_jax.data.preprocess import preprocess
  from vdvae_jax.model import api
  x, t = preprocess(jnp.asarray(builtin_image(hps.image_size)), hps)
  return float(api.elbo(params, hps, x, t, posterior='mean').bits_per_dim[0])


def convert(torch_checkpoint: str, output: str, hps: HParams, *, infer_architecture: bool = False,
            evaluate: bool = True, overwrite: bool = False, progress: bool = True,
            log=print) -> ConversionReport:
  """Convert an official checkpoint to a pretrained-model directory (see module docstring)."""
  if os.path.exists(output) and not overwrite:
    raise ConversionError(f'{output}: already exists (use --overwrite to replace it)')
  sd = load_torch_state_dict(torch_checkpoint)
  shapes = {k: tuple(v.shape) for k, v in sd.items()}
  notes: list[str] = []
  if infer_architecture:
    try:
      hps, notes = infer_hparams(shapes, hps)
    except HParamsError as e:
      raise ConversionError(f'{torch_checkpoint}: cannot infer the architecture: {e}') from None
    log(f'inferred enc_blocks: {hps.enc_blocks}')
    log(f'inferred dec_blocks: {hps.dec_blocks}')
    for n in notes:
      log(f'  note: {n}')
  try:
    check_state_dict(shapes, hps, hint=mismatch_hint(shapes, hps))
  except StateDictMismatch as e:
    raise ConversionError(f'{torch_checkpoint}: {e}') from None

  params: dict = {}
  entries = state_dict_entries(hps)
  for e in tqdm(entries, desc='copy tensors', unit='tensor', disable=not progress):
    node = params
    for name in e.flax_path[:-1]:
      node = node.setdefault(name, {})
    node[e.flax_path[-1]] = e.to_flax(sd[e.torch_key].detach().float().numpy())
  source = dict(torch_checkpoint=os.path.abspath(torch_checkpoint),
                num_state_dict_entries=len(entries), inferred_notes=notes)
  out = save_pretrained(output, params, hps, source=source, overwrite=overwrite)

  # Reload what was written and check it equals the source tensors, bit for bit.
  try:
    reloaded, hps2 = load_pretrained(out, expected=hps)
    back = params_to_state_dict(reloaded, hps2)
    bad = [k for k in back if not np.array_equal(back[k], sd[k].detach().float().numpy())]
    if bad:
      raise ConversionError(f'{out}: reloaded tensors differ from the source: {bad[:5]}')
  except BaseException:
    import shutil
    shutil.rmtree(out, ignore_errors=True)
    raise
  n = num_parameters(hps)
  log(f'wrote {out}: {n:,} parameters ({len(entries)} tensors), reload verified')
  bpd = None
  if evaluate:
    bpd = bits_per_dim_on_builtin(reloaded, hps)
    log(f'bits/dim on the built-in astronaut image at {hps.image_size}x{hps.image_size}: {bpd:.4f}')
  return ConversionReport(out, hps, n, notes, bpd)
