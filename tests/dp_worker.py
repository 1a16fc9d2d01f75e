"""Run 3 train steps of the tiny VDVAE on however many CPU devices XLA_FLAGS forces; save the
losses and final parameters. Used by test_data_parallel.py in fresh processes.

  python dp_worker.py OUT.npz [DTYPE]      DTYPE: the model's compute dtype (default float32)
"""
import sys

import jax
import numpy as np

sys.path.insert(0, __file__.rsplit('/', 1)[0])
from tiny import TINY  # noqa: E402
from vdvae_jax.model import api  # noqa: E402
from vdvae_jax.train import parallel  # noqa: E402
from vdvae_jax.train.losses import elbo_loss  # noqa: E402
from vdvae_jax.train.optimizer import make_optimizer  # noqa: E402
from vdvae_jax.train.state import TrainState  # noqa: E402
from vdvae_jax.train.step import make_train_step  # noqa: E402


def main(out_path: str, dtype: str = 'float32', global_batch: int = 4):
  hps = TINY.replace(dtype=dtype)
  mesh = parallel.make_mesh()
  tx = make_optimizer(lr=1e-3, warmup_iters=0, b1=0.9, b2=0.9, eps=1e-8, wd=0.01, grad_clip=200.0,
                      skip_threshold=400.0)
  state = TrainState.create(api.init_params(hps, jax.random.key(0)), tx, jax.random.PRNGKey(1))
  state = jax.device_put(state, parallel.replicated(mesh))
  step = parallel.jit_data_parallel(make_train_step(elbo_loss(hps), tx, 0.999), mesh)
  rs = np.random.RandomState(0)
  losses = []
  for _ in range(3):
    batch = {'image': rs.randint(0, 256, (global_batch, 16, 16, 3)).astype(np.uint8)}
    state, m = step(state, parallel.global_batch(batch, mesh))
    losses.append(float(m['loss']))
  flat = {jax.tree_util.keystr(p): np.asarray(x)
          for p, x in jax.tree_util.tree_flatten_with_path(state.params)[0]}
  np.savez(out_path, losses=np.asarray(losses), n_devices=len(jax.devices()), **flat)


if __name__ == '__main__':
  main(*sys.argv[1:3])
