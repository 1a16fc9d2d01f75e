"""A tiny VDVAE for fast tests: every structural feature of the real presets at 16x16."""
import functools

import jax

from vdvae_jax.hparams import HParams
from vdvae_jax.model import api

TINY = HParams(image_size=16, width=16, zdim=4, dataset='cifar10', num_mixtures=3,
               enc_blocks='16x1,16d2,8x1,8d2,4x1,4d4,1x1',
               dec_blocks='1x1,4m1,4x1,8m4,8x1,16m8,16x1',
               custom_width_str='1:24,4:24', no_bias_above=8)


@functools.lru_cache(maxsize=None)
def tiny_params(seed: int = 0):
  return api.init_params(TINY, jax.random.key(seed))
