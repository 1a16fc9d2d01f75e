"""Face super-resolution x8 (32 -> 256) on a pretrained FFHQ-256 VDVAE; diverse SR (Prost et al.)
by default, VDVAE-SR (Chira et al.) with --config.sr.method=vdvae_sr.

  python convert_torch_weights.py --torch_checkpoint ffhq256-iter-1700000-model-ema.th \
      --preset ffhq256 --output pretrained/ffhq256
  python train.py --config=configs/ffhq_x8.py --workdir=runs/ffhq_x8 \
      --config.init_from=pretrained/ffhq256 --config.data.path=data/ffhq-256.npy
  python train.py --config=configs/ffhq_x8.py:tiny --workdir=/tmp/ffhq_x8_tiny

ky: the LR-encoder on 32x32 reaches the decoder groups up to 32x32 (43 of ffhq256's 66); this
config predicts all of them from the LR image. The LR degradation is MATLAB bicubic.
"""
from vdvae_jax.train.config import base_config, check_variant, make_tiny, set_schedule

SCALE = 8
LR_ENC_BLOCKS = '32x4,32d2,16x4,16d2,8x4,8d2,4x4,4d4,1x4'
KY = 43


def get_config(arg=None, scale=SCALE, lr_enc_blocks=LR_ENC_BLOCKS, ky=KY):
  check_variant(arg)
  c = base_config('ffhq256')
  c.data.kind = 'npy'
  c.data.official_dataset = 'ffhq_256'
  c.data.random_flip = True
  c.sr.method = 'diverse'
  c.sr.scale = scale
  c.sr.lr_enc_blocks = lr_enc_blocks
  c.sr.ky = ky
  c.sr.eval_temperature = 0.8
  # Prost et al.: AdamW, lr 1e-4 with plateau decay, only the new parameters train.
  c.model.lr = 1e-4
  c.train.plateau_factor = 0.5
  c.train.plateau_patience = 5
  c.train.plateau_accumulation = 1000
  c.model.warmup_iters = 100
  c.train.batch_size = 4
  set_schedule(c, steps=200_000, every=5_000)
  c.train.sample_temperatures = (0.5, 0.8, 1.0)
  if arg == 'tiny':
    make_tiny(c)
    c.sr.scale = 4                                   # 32 -> 8 on the tiny model
    c.sr.lr_enc_blocks = '8x1,8d4,2x1'
    c.sr.ky = 3
  return c
