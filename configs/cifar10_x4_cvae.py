"""Course-report baseline: a plain conditional VAE on CIFAR-10, 8x8 -> 32x32 after Gaussian blur
(sigma 1) and subsampling by 4 (latent 192, Gaussian observation with std 0.01, ReLU, sigmoid).

  python train.py --config=configs/cifar10_x4_cvae.py --workdir=runs/c10_cvae \
      --config.data.data_dir=~/tensorflow_datasets
  python train.py --config=configs/cifar10_x4_cvae.py:tiny --workdir=/tmp/cvae_tiny
"""
import importlib.util
import os

_spec = importlib.util.spec_from_file_location(
    'srcnn', os.path.join(os.path.dirname(os.path.abspath(__file__)), 'cifar10_x4_srcnn.py'))
_base = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_base)


def get_config(arg=None):
  c = _base.get_config(arg, method='cvae')
  c.sr.eval_temperature = 0.8
  c.train.sample_temperatures = (0.5, 1.0)
  return c
