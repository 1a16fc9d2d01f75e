"""Face super-resolution x4 (64 -> 256) on a pretrained FFHQ-256 VDVAE (see ffhq_x8.py).

  python train.py --config=configs/ffhq_x4.py --workdir=runs/ffhq_x4 \
      --config.init_from=pretrained/ffhq256 --config.data.path=data/ffhq-256.npy
  python train.py --config=configs/ffhq_x4.py:tiny --workdir=/tmp/ffhq_x4_tiny

The LR-encoder on 64x64 reaches the groups up to 64x64 (57); ky = 43 predicts those up to 32x32.
"""
import importlib.util
import os

_spec = importlib.util.spec_from_file_location(
    'ffhq_x8', os.path.join(os.path.dirname(os.path.abspath(__file__)), 'ffhq_x8.py'))
_base = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_base)


def get_config(arg=None):
  return _base.get_config(arg, scale=4, lr_enc_blocks='64x2,64d2,32x4,32d2,16x4,16d2,8x4,8d2,'
                          '4x4,4d4,1x4', ky=43)
