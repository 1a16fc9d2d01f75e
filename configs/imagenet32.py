"""VDVAE on ImageNet 32x32, official hyperparameters (hps.py `imagenet32`: 119M parameters).

Data: the official imagenet32 .npy arrays (`--config.data.path=.../imagenet32-train.npy`, 5k held
out with seed 42) or TFDS imagenet_resized/32x32 (`--config.data.kind=tfds`).

  python train.py --config=configs/imagenet32.py --workdir=runs/i32 \
      --config.data.path=data/imagenet32-train.npy
  python train.py --config=configs/imagenet32.py:tiny --workdir=/tmp/i32_tiny
"""
from vdvae_jax.train.config import base_config, check_variant, make_tiny, set_schedule


def get_config(arg=None):
  check_variant(arg)
  c = base_config('imagenet32')
  c.data.kind = 'npy'
  c.data.official_dataset = 'imagenet32'
  set_schedule(c, steps=1_700_000, every=10_000)
  return make_tiny(c) if arg == 'tiny' else c
