"""Data parallelism: a 1-D mesh over every device JAX sees; batch sharded on 'data', state
replicated. Multi-host: jax.distributed.initialize when asked; each host feeds its local slice."""
from __future__ import annotations

import os

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

DATA_AXIS = 'data'


def maybe_initialize_distributed(enabled: bool | None) -> None:
  """jax.distributed.initialize() if the config asks (True) or, with None, if the environment
  names a coordinator (JAX_COORDINATOR_ADDRESS, or a cluster JAX auto-detects via SLURM etc.)."""
  if enabled is None:
    enabled = bool(os.environ.get('JAX_COORDINATOR_ADDRESS'))
  if enabled and jax.process_count() == 1:
    jax.distributed.initialize()


def make_mesh() -> Mesh:
  return Mesh(np.asarray(jax.devices()), (DATA_AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def data_sharded(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P(DATA_AXIS))


def check_batch_size(global_batch: int, mesh: Mesh) -> None:
  from vdvae_jax.train.config import ConfigError
  n = mesh.devices.size
  if global_batch % n:
    raise ConfigError(f'config.train.batch_size {global_batch} (the global batch) is not '
                      f'divisible by the {n} devices')


def global_batch(local: dict, mesh: Mesh) -> dict:
  """Host-local numpy batch [b_local, ...] -> global jax.Arrays sharded on the data axis."""
  sharding = data_sharded(mesh)
  return {k: jax.make_array_from_process_local_data(sharding, np.asarray(v))
          for k, v in local.items()}


def jit_data_parallel(step_fn, mesh: Mesh, donate_state: bool = True,
                      compiler_options: dict | None = None):
  """jit a (state, batch) -> (state, metrics) step: state replicated, batch sharded on 'data'."""
  repl, data = replicated(mesh), data_sharded(mesh)
  return jax.jit(step_fn, in_shardings=(repl, data), out_shardings=(repl, repl),
                 donate_argnums=(0,) if donate_state else (),
                 compiler_options=compiler_options or None)
