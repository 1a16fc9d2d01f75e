"""Per-dataset preprocessing of uint8 images, as the official `data.py` `preprocess_func`.

  x_input  = (x + shift) * scale                         network input
  x_target = (t + shift_loss) * scale_loss               DMoL target in [-1, 1]
with x = uint8 * input_scale (ffhq_1024 is read as floats in [0, 1]) and t = x, except for 5-bit
data (ffhq_256) where t = floor(uint8 / 8) * 8. Arithmetic is float32 in the official order.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from vdvae_jax.hparams import HParams


def preprocess(images: jax.Array, hps: HParams) -> tuple[jax.Array, jax.Array]:
  """uint8 [B,H,W,3] -> (x_input, x_target), both float32 [B,H,W,3]."""
  if images.dtype != jnp.uint8:
    raise TypeError(f'preprocess expects uint8 images, got {images.dtype}')
  if images.ndim != 4 or images.shape[-1] != hps.image_channels:
    raise ValueError(f'preprocess expects [B,H,W,{hps.image_channels}] images, got {images.shape}')
  pp = hps.preprocessing
  f32 = np.float32
  x = images.astype(jnp.float32)
  if pp.input_scale != 1.0:
    x = x / f32(1.0 / pp.input_scale)         # torchvision ToTensor: float(u8) / 255
  x_input = (x + f32(pp.shift)) * f32(pp.scale)
  t = x
  if pp.low_bit:
    t = jnp.floor(t * f32(1.0 / 8.0)) * f32(8.0)
  x_target = (t + f32(pp.shift_loss)) * f32(pp.scale_loss)
  return x_input, x_target
