"""A CPU-sized VDVAE on the built-in demo photographs (scikit-image; nothing to download).

  python train.py --config=configs/demo.py --workdir=workdirs/demo

32x32 patches, width 64, 4 resolutions; a few hundred steps learn visibly on 2 CPU cores.
"""
from vdvae_jax.train.config import base_config


def get_config(arg=None):
  c = base_config('cifar10')
  c.model.update(dict(
      dataset='cifar10', image_size=32, width=64, zdim=8, num_mixtures=5,
      enc_blocks='32x2,32d2,16x2,16d2,8x2,8d2,4x2,4d4,1x1',
      dec_blocks='1x1,4m1,4x2,8m4,8x2,16m8,16x2,32m16,32x2',
      lr=2e-3, warmup_iters=20, ema_rate=0.99, grad_clip=200.0, skip_threshold=1000.0, n_batch=8))
  c.data.kind = 'demo'
  c.data.train_split = 'train'
  c.data.eval_split = 'valid'
  c.data.random_flip = True
  c.train.batch_size = 8
  c.train.steps = 300
  c.train.log_every = 10
  c.train.eval_every = 100
  c.train.eval_batches = 4
  c.train.checkpoint_every = 100
  c.train.sample_every = 300
  if arg == 'tiny':
    c.model.update(dict(width=16, zdim=4, enc_blocks='32x1,32d2,16x1,16d2,8x1,8d4,2x1',
                        dec_blocks='2x1,8m2,8x1,16m8,32m16,32x1', num_mixtures=3))
    c.train.batch_size = 4
    c.train.steps = 6
    c.train.log_every = 2
    c.train.eval_every = 3
    c.train.eval_batches = 1
    c.train.checkpoint_every = 3
    c.train.sample_every = 6
    c.train.sample_temperatures = (0.5, 1.0)
    c.train.samples_per_temperature = 2
    c.train.progress_bar = False
  return c
