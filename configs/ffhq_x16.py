"""Face super-resolution x16 (16 -> 256) on a pretrained FFHQ-256 VDVAE (see ffhq_x8.py).

  python train.py --config=configs/ffhq_x16.py --workdir=runs/ffhq_x16 \
      --config.init_from=pretrained/ffhq256 --config.data.path=data/ffhq-256.npy
  python train.py --config=configs/ffhq_x16.py:tiny --workdir=/tmp/ffhq_x16_tiny

The LR-encoder on 16x16 reaches the groups up to 16x16: ky = 21 (all of them).
"""
import importlib.util
import os

_spec = importlib.util.spec_from_file_location(
    'ffhq_x8', os.path.join(os.path.dirname(os.path.abspath(__file__)), 'ffhq_x8.py'))
_base = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_base)


def get_config(arg=None):
  return _base.get_config(arg, scale=16, lr_enc_blocks='16x4,16d2,8x4,8d2,4x4,4d4,1x4', ky=21)
