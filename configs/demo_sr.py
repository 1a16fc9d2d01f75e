"""x4 super-resolution (8x8 -> 32x32 patches) of the built-in demo photographs, on the committed
demo VDVAE (`pretrained/demo`, made by configs/demo.py). Diverse SR (Prost et al.) by default;
`:large` for diverse SR with a larger LR-encoder trained twice as long (20 minutes); `:p64` for
`:large` on the 64x64-patch demo VDVAE (`pretrained/demo_p64`, configs/demo.py:p64; 16x16 ->
64x64 patches, 41 minutes); `:vdvae_sr` for VDVAE-SR (Chira et al.); `:srcnn` for the course
report's SRCNN on the same patches (a three-layer MSE-trained CNN; experiments/sr_cnn_bound.py
trains a stronger one).

  python train.py --config=configs/demo_sr.py --workdir=workdirs/demo_sr
  python eval.py --workdir=workdirs/demo_sr          # the held-out photographs, tiled
  python train.py --config=configs/demo_sr.py:large --workdir=workdirs/demo_sr_large    # 20 min
  python eval.py --workdir=workdirs/demo_sr_large
  python train.py --config=configs/demo_sr.py:p64 --workdir=workdirs/demo_sr_p64    # 41 min
  python eval.py --workdir=workdirs/demo_sr_p64
  python train.py --config=configs/demo_sr.py:vdvae_sr --workdir=workdirs/demo_vdvae_sr   # 3 h 25 min
  python eval.py --workdir=workdirs/demo_vdvae_sr
  python train.py --config=configs/demo_sr.py:srcnn --workdir=workdirs/demo_srcnn
  python eval.py --workdir=workdirs/demo_sr --diagnose   # where the gap to bicubic comes from

SR images take the DMoL mean (config.sr.pixels; eval.py --pixels).
"""
import importlib.util
import os

from vdvae_jax.train.config import check_variant

_HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location('demo', os.path.join(_HERE, 'demo.py'))
_demo = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_demo)

PRETRAINED = os.path.join(os.path.dirname(_HERE), 'pretrained', 'demo')
PRETRAINED_P64 = os.path.join(os.path.dirname(_HERE), 'pretrained', 'demo_p64')


def get_config(arg=None):
  check_variant(arg, ('large', 'p64', 'vdvae_sr', 'srcnn'))
  p64 = arg == 'p64'
  c = _demo.get_config('p64' if p64 else None)
  c.init_from = PRETRAINED_P64 if p64 else PRETRAINED
  c.sr.method = 'diverse' if arg in (None, 'large', 'p64') else arg
  c.sr.scale = 4
  # The LR-encoder reads the 8x8 LR image bicubically upsampled to 16x16, so that it reaches the
  # first 16x16 group: ky = 11 is every group of pretrained/demo that carries information (its
  # other 16x16 group and both 32x32 ones are collapsed). Reading the 8x8 image itself, ky <= 10
  # and SR stays at bicubic's level (docs/super_resolution.md, "Demo experiment").
  c.sr.lr_upsample = 2
  c.sr.lr_enc_blocks = '16d2,8x4,8d2,4x2,4d4,1x1'
  c.sr.ky = 11
  c.sr.condition = 'depth'
  c.sr.eval_temperature = 0.1
  c.sr.pixels = 'mean'
  # 8 training photographs: the 8 symmetries of the square and the 6 RGB orders give the
  # LR-encoder orientations and colours they lack (without them, grace_hopper's flat blue
  # background fails); they need 2000-3000 steps, not 1500 (docs/super_resolution.md,
  # "Augmentation"). 2000 keeps README command 1 within 15 minutes on 2 cores.
  c.data.random_rot90 = True
  c.data.channel_shuffle = 1.0
  # 2e-3: 0.3-0.4 dB PSNR-Y and 1.5-2.7 dB LR-PSNR (t = 0.1) above 1e-3 at 2000 steps; 4e-3
  # diverged (docs/super_resolution.md, "Learning rate").
  c.model.lr = 2e-3
  c.model.warmup_iters = 50
  c.model.ema_rate = 0.99
  c.train.batch_size = 16
  c.train.steps = 2000
  c.train.log_every = 50
  c.train.eval_every = 1000
  c.train.checkpoint_every = 1000
  c.train.sample_every = 2000
  c.train.sample_temperatures = (0.1, 0.8)
  if arg in ('large', 'p64'):
    # The VDVAE's own encoder blocks on the LR image upsampled x4 (the HR size), predicting all
    # its groups (14 of pretrained/demo, 16 of pretrained/demo_p64), 4000 steps.
    # `:large` (20 minutes on 2 cores; a step costs 2.3 times the default's): +0.27 and +0.49 dB
    # PSNR-Y, +2.4 and +1.2 dB LR-PSNR (t = 0.1) over the default; 6000 steps added 0.005 and
    # 0.05 dB (docs/super_resolution.md, "Demo experiment").
    # `:p64` (16x16 LR patches, 41 minutes): against `:large`, -0.03 and -0.51 dB PSNR-Y at
    # t = 0.1, but at t = 0.8 LR-consistency above bicubic's on both photographs (+2.5 and +0.5
    # dB over `:large`) at a fifth to a third of its diversity (docs/super_resolution.md, "64x64
    # patches").
    c.sr.lr_upsample, c.sr.ky = 4, (16 if p64 else 14)
    c.sr.lr_enc_blocks = c.model.enc_blocks
    c.train.steps = c.train.sample_every = 4000
    c.train.eval_every = c.train.checkpoint_every = 2000
  if arg == 'vdvae_sr':
    c.sr.lr_upsample, c.sr.lr_enc_blocks = 1, '8x4,8d2,4x2,4d4,1x1'   # the paper's: the LR image
    # Chira et al.: Adam, 5e-4, 100k steps. Here 30000 steps (about 3 h 25 min on 2 cores): the
    # new parameters at model.lr (2e-3), the fine-tuned decoder at 5e-4 (finetune_lr_scale
    # 0.25), gates that open 10x faster (alpha = 10 a, a zero-initialised), and (not in the
    # paper) a cosine decay of the learning rate to 0 over the last 6000 steps: against 30000
    # steps at a constant rate +0.04 and +0.09 dB PSNR-Y, +2.1 and +2.2 dB LR-PSNR (t = 0.1) on
    # the held-out photographs (docs/super_resolution.md, "Demo experiment").
    c.sr.finetune_lr_scale = 0.25
    c.model.wd = 0.0
    c.sr.gate_scale = 10.0
    # The same augmentations as diverse SR: without them grace_hopper's blue background came
    # out dark and patchy (18.07 dB at 600 steps).
    c.train.steps, c.train.lr_decay_steps = 30000, 6000
    c.train.eval_every = c.train.checkpoint_every = c.train.sample_every = 1500
  if arg == 'srcnn':
    c.model.lr, c.model.wd = 1e-3, 0.0    # the same patches and augmentation; MSE, Adam
    c.train.steps = c.train.sample_every = 3000
  return c
