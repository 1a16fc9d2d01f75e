"""VDVAE on ImageNet 64x64, official hyperparameters (hps.py `imagenet64`: 125M parameters).

  python train.py --config=configs/imagenet64.py --workdir=runs/i64 \
      --config.data.path=data/imagenet64-train.npy
  python train.py --config=configs/imagenet64.py:tiny --workdir=/tmp/i64_tiny
"""
from vdvae_jax.train.config import base_config, check_variant, make_tiny, set_schedule


def get_config(arg=None):
  check_variant(arg)
  c = base_config('imagenet64')
  c.data.kind = 'npy'
  c.data.official_dataset = 'imagenet64'
  set_schedule(c, steps=1_600_000, every=10_000)
  return make_tiny(c) if arg == 'tiny' else c
