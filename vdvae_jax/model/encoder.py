"""Bottom-up encoder (official `vae.Encoder`)."""
from __future__ import annotations

import math
from typing import Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from vdvae_jax.hparams import HParams, parse_layer_string
from vdvae_jax.model.blocks import Conv2d, block_class
from vdvae_jax.model.layout import block_params, run_params
from vdvae_jax.model.precision import dtypes
from vdvae_jax.model.scan import isolate, remat_policy, runs, scan_run


def encoder_runs(layers: list[tuple[int, Optional[int]]]) -> list[tuple[int, int]]:
  """[start, end) of each loop under hps.scan_blocks: runs of equal (resolution, down-rate)."""
  return runs(list(layers), min_len=1)


class Encoder(nn.Module):
  """x [B,R,R,3] (preprocessed) -> {resolution r: activation [B,r,r,w_r]}.

  Later blocks at the same resolution overwrite its entry, so the decoder sees the last activation
  of each resolution; when the width grows after a down block, channels are zero-padded at the end.
  `enc_blocks` overrides hps.enc_blocks (e.g. the LR-encoder of super-resolution, on smaller
  images, with the widths of `hps`).
  """
  hps: HParams
  enc_blocks: Optional[str] = None

  @nn.compact
  def __call__(self, x: jax.Array) -> dict[int, jax.Array]:
    hps = self.hps
    layers = parse_layer_string(self.enc_blocks or hps.enc_blocks, field='enc_blocks')
    # Official: in_conv -> hps.width. An override encoder (on LR images) starts at its own width.
    dtype, param_dtype = dtypes(hps)
    x = Conv2d(hps.width_at(x.shape[1]) if self.enc_blocks else hps.width, 3, dtype=dtype,
               param_dtype=param_dtype, name='in_conv')(x)
    acts = {x.shape[1]: x}
    scanned = {}
    if hps.scan_blocks and not self.is_initializing():
      scanned = dict(encoder_runs(layers))
    i = 0
    while i < len(layers):
      res, down_rate = layers[i]
      w = hps.width_at(res)
      make = lambda cls=block_class(hps, remat=False), **kw: cls(  # noqa: E731
          hps.bottleneck(res), w, down_rate=down_rate, residual=True, use_3x3=res > 2,
          last_scale=math.sqrt(1.0 / len(layers)), **kw)
      if i in scanned and scanned[i] - i == 1:      # one block: a loop of length one
        block = make(parent=None)                      # applied with explicit params
        x = isolate(lambda p, c: block.apply({'params': p}, c),
                    self.variables['params'][f'enc_blocks_{i}'], x, remat_policy(hps))
        i += 1
      elif i in scanned:                     # a run of identical blocks: one scan
        end = scanned[i]
        params = run_params(self.variables['params'], 'enc_blocks_', i, end)
        block = make(parent=None)           # applied with explicit params
        x, _ = scan_run(lambda c, p, _: (block.apply({'params': p}, c), None), x, params,
                        jnp.arange(i, end), remat_policy(hps))
        i = end
      elif self.is_initializing() or f'enc_blocks_{i}' in self.variables['params']:
        x = make(block_class(hps), name=f'enc_blocks_{i}')(x)
        i += 1
      else:                                  # stacked layout (model/layout.py), unrolled
        x = make(block_class(hps), parent=None).apply(
            {'params': block_params(self.variables['params'], 'enc_blocks_', i)}, x)
        i += 1
      r = x.shape[1]
      if x.shape[-1] != hps.width_at(r):
        x = jnp.pad(x, ((0, 0), (0, 0), (0, 0), (0, hps.width_at(r) - x.shape[-1])))
      acts[r] = x
    return acts
