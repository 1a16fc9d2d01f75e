"""VDVAE-SR (Chira et al.) x4 on DIV2K: 64x64 LR patches -> 256x256, from a pretrained FFHQ-256
VDVAE; encoder frozen, decoder fine-tuned, LR-encoder trained from scratch; Adam, lr 5e-4,
batch 1, 100k steps (paper, section 5.2).

  python train.py --config=configs/div2k_x4.py --workdir=runs/div2k_x4 \
      --config.init_from=pretrained/ffhq256 --config.data.path=data/DIV2K/DIV2K_train_HR \
      --config.data.eval_path=data/DIV2K/DIV2K_valid_HR
  python train.py --config=configs/div2k_x4.py:tiny --workdir=/tmp/div2k_x4_tiny

Options: --config.sr.condition=resolution (the authors' code: blocks below 32x32),
--config.sr.gate=channel (per-channel gates), 16 -> 64 patches by changing model.image_size.
"""
from vdvae_jax.train.config import base_config, check_variant, make_tiny, set_schedule


def get_config(arg=None):
  check_variant(arg)
  c = base_config('ffhq256')
  c.data.kind = 'folder'
  c.data.random_flip = True
  c.sr.method = 'vdvae_sr'
  c.sr.scale = 4
  c.sr.lr_enc_blocks = '64x3,64d2,32x3,32d2,16x3,16d2,8x3,8d2,4x3,4d4,1x3'
  c.sr.condition = 'depth'
  c.sr.gate = 'scalar'
  c.sr.eval_temperature = 0.1
  c.model.lr = 5e-4
  c.model.wd = 0.0
  c.model.warmup_iters = 100
  c.train.batch_size = 1
  set_schedule(c, steps=100_000, every=5_000)
  c.train.sample_temperatures = (0.1, 0.8)
  if arg == 'tiny':
    make_tiny(c)
    c.sr.lr_enc_blocks = '8x1,8d4,2x1'
  return c
