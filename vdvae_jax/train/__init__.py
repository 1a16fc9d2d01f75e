"""Training: config schema, optimizer, state, steps, data parallelism, checkpoints, the loop,
the logged grids. May import hparams, data, model and sr; not evaluate (tests/test_layering.py)."""


def train_and_evaluate(config, workdir):
  """See vdvae_jax.train.loop.train_and_evaluate (imported lazily: it pulls in grain/orbax)."""
  from vdvae_jax.train.loop import train_and_evaluate as run
  return run(config, workdir)
