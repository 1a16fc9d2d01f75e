"""The demo VDVAE: 32x32 patches of the built-in demo photographs (scikit-image; nothing to
download), width 128, 14 latent groups (10 at 8x8 and below, 2 at 16x16, 2 at 32x32; in the
trained model the second 16x16 group and both 32x32 ones are collapsed). `pretrained/demo` in
the repository is this config's output (EMA weights):

  python train.py --config=configs/demo.py --workdir=workdirs/demo_vdvae
  cp -r workdirs/demo_vdvae/pretrained pretrained/demo     # what is committed

The super-resolution demo (configs/demo_sr.py) starts from it. `:tiny` is a seconds-long variant
for tests. `:p64` trains the same model on 64x64 patches (one more resolution on each side,
64 channels there, half the patches in a random RGB order; about an hour on 2 cores), so that
SR can work in 16x16 LR tiles:

  python train.py --config=configs/demo.py:p64 --workdir=workdirs/demo_vdvae_p64
  cp -r workdirs/demo_vdvae_p64/pretrained pretrained/demo_p64   # what is committed
"""
from vdvae_jax.train.config import base_config, check_variant


def get_config(arg=None):
  check_variant(arg, ('tiny', 'p64'))
  c = base_config('cifar10')
  c.model.update(dict(
      dataset='cifar10', image_size=32, width=128, zdim=16, num_mixtures=10,
      enc_blocks='32x1,32d2,16x2,16d2,8x4,8d2,4x2,4d4,1x1',
      dec_blocks='1x1,4m1,4x2,8m4,8x5,16m8,16x1,32m16,32x1',
      lr=1.5e-3, warmup_iters=100, ema_rate=0.995, grad_clip=200.0, skip_threshold=1000.0,
      n_batch=16))
  # A model this small trains faster unrolled on XLA:CPU (the same function).
  c.model.update(dict(scan_blocks=False, remat=False, conv_impl='lax'))
  c.data.kind = 'demo'
  c.data.train_split = 'train'
  c.data.eval_split = 'valid'
  c.data.random_flip = True
  c.train.batch_size = 16
  c.train.steps = 3000
  c.train.log_every = 50
  c.train.eval_every = 500
  c.train.eval_batches = 4
  c.train.checkpoint_every = 500
  c.train.sample_every = 3000
  if arg == 'p64':
    # 64x64 patches: one more resolution on each side, 64 channels there (128 below).
    c.model.update(dict(image_size=64, width=64,
                        custom_width_str='1:128,4:128,8:128,16:128,32:128',
                        enc_blocks='64x1,64d2,' + c.model.enc_blocks,
                        dec_blocks=c.model.dec_blocks + ',64m32,64x1'))
    # Half the patches in a random RGB order. Trained without it, this model's posterior
    # overflowed on colours the 8 photographs lack (an 8x8 group's log std up to +18, then
    # inf): every SR batch with reordered colours was non-finite, and SR of grace_hopper's blue
    # background gave NaN tiles (docs/super_resolution.md, "64x64 patches").
    c.data.channel_shuffle = 0.5
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
