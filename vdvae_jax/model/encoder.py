"""Bottom-up encoder (official `vae.Encoder`)."""
from __future__ import annotations

import math
from typing import Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from vdvae_jax.hparams import HParams, parse_layer_string
from vdvae_jax.model.blocks import Conv2d, block_class


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
    x = Conv2d(hps.width_at(x.shape[1]) if self.enc_blocks else hps.width, 3, name='in_conv')(x)
    acts = {x.shape[1]: x}
    for i, (res, down_rate) in enumerate(layers):
      w = hps.width_at(res)
      x = block_class(hps.remat)(hps.bottleneck(res), w, down_rate=down_rate, residual=True, use_3x3=res > 2,
                last_scale=math.sqrt(1.0 / len(layers)), name=f'enc_blocks_{i}')(x)
      r = x.shape[1]
      if x.shape[-1] != hps.width_at(r):
        x = jnp.pad(x, ((0, 0), (0, 0), (0, 0), (0, hps.width_at(r) - x.shape[-1])))
      acts[r] = x
    return acts
