"""x4 super-resolution (8x8 -> 32x32 patches) on the built-in demo photographs, from the demo
VDVAE (train it first with configs/demo.py). Diverse SR by default; `:vdvae_sr` for VDVAE-SR.

  python train.py --config=configs/demo.py --workdir=workdirs/demo
  python train.py --config=configs/demo_sr.py --workdir=workdirs/demo_sr
  python train.py --config=configs/demo_sr.py:vdvae_sr --workdir=workdirs/demo_vdvae_sr
  python eval.py --workdir=workdirs/demo_sr        # the held-out photograph, tiled
"""
import importlib.util
import os

_spec = importlib.util.spec_from_file_location(
    'demo', os.path.join(os.path.dirname(os.path.abspath(__file__)), 'demo.py'))
_demo = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_demo)


def get_config(arg=None):
  c = _demo.get_config()
  c.init_from = 'workdirs/demo/pretrained'
  c.sr.method = 'vdvae_sr' if arg == 'vdvae_sr' else 'diverse'
  c.sr.scale = 4
  c.sr.lr_enc_blocks = '8x2,8d2,4x2,4d4,1x1'
  c.sr.ky = 7                        # every group the 8x8 LR-encoder reaches (1, 4, 8: 7 of 13)
  c.sr.condition = 'depth'
  c.sr.eval_temperature = 0.1
  c.model.lr = 1e-3
  c.model.ema_rate = 0.99
  c.train.steps = 300
  c.train.sample_temperatures = (0.1, 0.8)
  return c
