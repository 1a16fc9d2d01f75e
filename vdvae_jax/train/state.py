"""The train state: params, optimizer state, EMA params, step and the base RNG key."""
from __future__ import annotations

from typing import Any

import flax
import jax
import jax.numpy as jnp
import optax


@flax.struct.dataclass
class TrainState:
  step: jax.Array         # int32 scalar: number of train steps taken (applied or skipped)
  params: Any
  opt_state: Any
  ema_params: Any
  rng: jax.Array          # uint32[2] raw key; the step's key is fold_in(rng, step)

  @classmethod
  def create(cls, params, tx: optax.GradientTransformation, rng: jax.Array) -> 'TrainState':
    params = jax.tree.map(jnp.asarray, params)
    return cls(step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params),
               ema_params=jax.tree.map(jnp.copy, params), rng=rng)
