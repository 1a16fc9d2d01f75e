"""VDVAE on FFHQ 256x256, official hyperparameters (hps.py `ffhq256`: 115M parameters, 5-bit
targets), the official seed-5 split with 7,000 validation images of the 70k array.

  python train.py --config=configs/ffhq256.py --workdir=runs/ffhq256 \
      --config.data.path=data/ffhq-256.npy
  python train.py --config=configs/ffhq256.py --workdir=runs/ffhq256_ft \
      --config.data.path=data/ffhq-256.npy --config.init_from=pretrained/ffhq256
  python train.py --config=configs/ffhq256.py:tiny --workdir=/tmp/ffhq256_tiny
"""
from vdvae_jax.train.config import base_config, check_variant, make_tiny, set_schedule


def get_config(arg=None):
  check_variant(arg)
  c = base_config('ffhq256')
  c.data.kind = 'npy'
  c.data.official_dataset = 'ffhq_256'
  c.data.random_flip = True
  set_schedule(c, steps=1_700_000, every=10_000)
  return make_tiny(c) if arg == 'tiny' else c
