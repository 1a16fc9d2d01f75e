"""VDVAE on CIFAR-10, official hyperparameters (hps.py `cifar10`: 39M parameters, batch 16 per GPU
in the paper's setup; here the global batch), official 45k/5k split of the training set.

  python train.py --config=configs/cifar10.py --workdir=runs/cifar10 \
      --config.data.data_dir=~/tensorflow_datasets          # prepared TFDS cifar10
  python train.py --config=configs/cifar10.py:tiny --workdir=/tmp/cifar10_tiny
"""
from vdvae_jax.train.config import base_config, check_variant, make_tiny, set_schedule


def get_config(arg=None):
  check_variant(arg)
  c = base_config('cifar10')
  c.data.kind = 'tfds'
  c.data.name = 'cifar10'
  c.data.official_dataset = 'cifar10'
  c.data.random_flip = False
  set_schedule(c, steps=1_100_000, every=10_000)
  return make_tiny(c) if arg == 'tiny' else c
