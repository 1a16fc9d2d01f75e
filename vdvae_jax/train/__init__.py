"""Training: config schema, optimizer, state, steps, data parallelism, checkpoints, the loop."""


def train_and_evaluate(config, workdir):
  """See vdvae_jax.train.loop.train_and_evaluate (imported lazily: it pulls in grain/orbax)."""
  from vdvae_jax.train.loop import train_and_evaluate as run
  return run(config, workdir)
