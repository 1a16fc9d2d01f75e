"""Training with bfloat16 compute and float32 master weights reaches the float32 losses: a small
VDVAE (configs/demo.py:tiny at 16x16) trained 200 steps on the demo photographs in each
precision, the same batches and initialisation, no loss scaling (model/precision.py)."""
import pathlib

import jax
import numpy as np

from vdvae_jax.model import api
from vdvae_jax.train import parallel
from vdvae_jax.train.config import hparams_from_config, load_config_file
from vdvae_jax.train.losses import elbo_loss
from vdvae_jax.train.loop import make_loaders
from vdvae_jax.train.optimizer import make_optimizer
from vdvae_jax.train.state import TrainState
from vdvae_jax.train.step import make_train_step

DEMO = str(pathlib.Path(__file__).resolve().parents[1] / 'configs' / 'demo.py')
STEPS = 200


def config():
  c = load_config_file(DEMO, 'tiny')
  c.model.update(dict(image_size=16, enc_blocks='16x1,16d4,4x1,4d4,1x1',
                      dec_blocks='1x1,4m1,4x1,16m4,16x1'))
  return c


def train(hps, batches):
  """Losses and skip flags of STEPS train steps, as the training loop builds them."""
  tx = make_optimizer(lr=hps.lr, warmup_iters=hps.warmup_iters, b1=hps.adam_beta1,
                      b2=hps.adam_beta2, eps=hps.adam_eps, wd=hps.wd, grad_clip=hps.grad_clip,
                      skip_threshold=hps.skip_threshold)
  params = api.init_params(hps, jax.random.PRNGKey(0))
  state = TrainState.create(params, tx, jax.random.PRNGKey(1))
  step = jax.jit(make_train_step(elbo_loss(hps), tx, hps.ema_rate), donate_argnums=0)
  losses, skipped = [], []
  for b in batches:
    state, m = step(state, b)
    losses.append(m['loss'])
    skipped.append(m['skipped'])
  return np.asarray(jax.device_get(losses)), np.asarray(jax.device_get(skipped))


def test_bf16_training_reaches_the_float32_losses():
  c = config()
  hps = hparams_from_config(c)
  loader, _ = make_loaders(c, hps, parallel.make_mesh(), c.seed)
  it = iter(loader)
  batches = [{'image': next(it)['image']} for _ in range(STEPS)]
  loss32, skip32 = train(hps, batches)
  loss16, skip16 = train(hps.replace(dtype='bfloat16'), batches)
  assert not skip32.any() and not skip16.any()        # no step skipped, in either precision
  assert np.all(np.isfinite(loss16))
  assert loss32[-20:].mean() < loss32[:20].mean() - 0.8           # it did train
  tail32, tail16 = loss32[-20:].mean(), loss16[-20:].mean()
  assert abs(tail16 - tail32) <= 0.02 * tail32, (tail32, tail16)
