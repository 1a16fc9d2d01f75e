"""Pure, jittable train and eval steps, generic over the loss (VDVAE ELBO now, SR losses later).

A loss function has the signature loss_fn(params, batch, key) -> (scalar loss, metrics dict).
"""
from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax

from vdvae_jax.model.precision import float32
from vdvae_jax.train.optimizer import skip_state
from vdvae_jax.train.state import TrainState

LossFn = Callable[[Any, dict, jax.Array], tuple[jax.Array, dict]]


def step_key(state: TrainState) -> jax.Array:
  """The step's PRNG key: the base key folded with the step number."""
  return jax.random.fold_in(state.rng, state.step)


def make_train_step(loss_fn: LossFn, tx: optax.GradientTransformationExtraArgs,
                    ema_rate: float) -> Callable[[TrainState, dict], tuple[TrainState, dict]]:
  """One optimisation step: grads -> (clip, skip, AdamW) -> EMA on applied steps only.
  Loss, gradients, optimizer state, parameters and EMA are float32 whatever the model's compute
  dtype (model/precision.py)."""

  def train_step(state: TrainState, batch: dict) -> tuple[TrainState, dict]:
    (loss, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        state.params, batch, step_key(state))
    loss, grads = float32(loss), jax.tree.map(float32, grads)
    updates, opt_state = tx.update(grads, state.opt_state, state.params, loss=loss, value=loss)
    params = optax.apply_updates(state.params, updates)
    skip = skip_state(opt_state)
    # p_ema <- p_ema * rate + p * (1 - rate), only when the update was applied.
    ema = jax.tree.map(lambda e, p: jnp.where(skip.last_skipped, e, e * ema_rate + p * (1 - ema_rate)),
                       state.ema_params, params)
    metrics = dict(metrics, loss=loss, grad_norm=skip.grad_norm, skipped_updates=skip.skipped,
                   skipped=skip.last_skipped)
    return state.replace(step=state.step + 1, params=params, opt_state=opt_state,
                         ema_params=ema), metrics

  return train_step
