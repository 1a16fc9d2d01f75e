"""VDVAE on FFHQ 1024x1024, official hyperparameters (hps.py `ffhq1024`: 109M parameters, custom
widths), images 65000-69999 held out, read from the folder of PNGs.

  python train.py --config=configs/ffhq1024.py --workdir=runs/ffhq1024 \
      --config.data.path=data/ffhq1024/
  python train.py --config=configs/ffhq1024.py:tiny --workdir=/tmp/ffhq1024_tiny
"""
from vdvae_jax.train.config import base_config, check_variant, make_tiny, set_schedule


def get_config(arg=None):
  check_variant(arg)
  c = base_config('ffhq1024')
  c.data.kind = 'folder'
  c.data.official_dataset = 'ffhq_1024'
  c.data.random_flip = True
  set_schedule(c, steps=1_700_000, every=10_000)
  return make_tiny(c) if arg == 'tiny' else c
