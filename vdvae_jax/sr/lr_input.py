"""The LR-encoder of either SR method, and what it reads (config.sr.lr_upsample)."""
from __future__ import annotations

import jax
import jax.numpy as jnp

from vdvae_jax.hparams import HParams
from vdvae_jax.model.encoder import Encoder
from vdvae_jax.sr.settings import SRSettings


def lr_encoder_input(y_input: jax.Array, hps: HParams, sr: SRSettings) -> jax.Array:
  """y_input [B, r, r, 3] (preprocessed LR) -> the LR-encoder's input: y_input itself, or, with
  sr.lr_upsample = u > 1, y_input bicubically upsampled to [B, u r, u r, 3] (Keys cubic,
  a = -0.5), so that the encoder's activations reach the resolutions above r."""
  if sr.lr_upsample == 1:
    return y_input
  b, h, _, c = y_input.shape
  r = h * sr.lr_upsample
  up = jax.image.resize(y_input.astype(jnp.float32), (b, r, r, c), 'bicubic')   # [B, ur, ur, 3]
  return up.astype(y_input.dtype)


class LREncoder(Encoder):
  """y_input [B, r, r, 3] (preprocessed LR) -> g {resolution: [B, r', r', w_r']}: a VDVAE
  bottom-up network (blocks sr.lr_enc_blocks) on lr_encoder_input(y_input). Its parameters are
  the Encoder's, under the same names. Build it as LREncoder(hps, sr=sr)."""
  sr: SRSettings | None = None

  def __post_init__(self):
    if self.sr is None:
      raise TypeError('LREncoder needs sr (the SR settings)')
    object.__setattr__(self, 'enc_blocks', self.sr.lr_enc_blocks)   # derived, never passed
    super().__post_init__()

  def __call__(self, y_input: jax.Array) -> dict[int, jax.Array]:
    return super().__call__(lr_encoder_input(y_input, self.hps, self.sr))
