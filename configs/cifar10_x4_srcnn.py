"""Course-report baseline: SRCNN on CIFAR-10, 8x8 -> 32x32 after Gaussian blur (sigma 1) and
subsampling by 4; MSE, Adam. Evaluate next to bicubic and the VDVAE methods with eval.py.

  python train.py --config=configs/cifar10_x4_srcnn.py --workdir=runs/c10_srcnn \
      --config.data.data_dir=~/tensorflow_datasets
  python eval.py --workdir=runs/c10_srcnn --hr_dir=data/cifar10_test_png
  python train.py --config=configs/cifar10_x4_srcnn.py:tiny --workdir=/tmp/srcnn_tiny
"""
from vdvae_jax.train.config import base_config, check_variant, make_tiny, set_schedule


def get_config(arg=None, method='srcnn'):
  check_variant(arg)
  c = base_config('cifar10')
  c.data.kind = 'tfds'
  c.data.name = 'cifar10'
  c.data.official_dataset = 'cifar10'
  c.data.random_flip = True
  c.sr.method = method
  c.sr.scale = 4
  c.sr.degradation = 'gaussian'
  c.sr.sigma = 1.0
  c.sr.eval_temperature = 1.0
  c.model.update(dict(lr=1e-3, wd=0.0, warmup_iters=0, grad_clip=1e6, skip_threshold=-1.0,
                      ema_rate=0.999))
  c.train.batch_size = 64
  set_schedule(c, steps=50_000, every=2_000)
  c.train.sample_temperatures = (1.0,)
  if arg == 'tiny':
    make_tiny(c)
    c.model.update(dict(lr=1e-3, warmup_iters=0))
  return c
