"""The official VDVAE optimisation as one optax transformation.

Official train.py step: clip_grad_norm_(grad_clip) (always, returns the norm before clipping) ->
skip the update if a loss term is NaN or grad_norm >= skip_threshold (-1 disables the norm test) ->
AdamW (betas (0.9, 0.9), eps 1e-8, decoupled weight decay) -> EMA; LambdaLR linear warm-up
lr_k = lr * min(k / warmup_iters, 1) over *all* iterations k = 0, 1, ... (skipped ones included),
while Adam's own step count (bias correction) only advances on applied updates.

Here, for the trainable parameters p and their gradients g (frozen ones get a zero update):
  g_flat = concat(g)                                      one vector: a handful of fused kernels
  bad    = loss or |g_flat| not finite, or |g_flat| >= skip_threshold
  a_flat = Adam(clip(g_flat))                             state kept as it was when bad
  s      = 0 if bad else -lr_k (* plateau scale)          the schedule advances every step
  update = m * (s * a + (s * wd) * p)                     per parameter array (m: lr_factors)
The weight-decay term is applied per array so the parameters are never concatenated: in the
jitted train step XLA scheduled that 0.46 GB copy (ffhq256) first and kept it live through the
forward and backward passes.
"""
from __future__ import annotations

from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax

from vdvae_jax.model.precision import check_master_params, float32


class SkipState(NamedTuple):
  inner: Any
  skipped: jax.Array        # int32, total number of skipped updates
  last_skipped: jax.Array   # bool, whether the latest update was skipped
  grad_norm: jax.Array      # float32, global norm of the latest raw gradient


class AdamWState(NamedTuple):
  skip: SkipState           # skip.inner: the (clip, Adam) state over the flat trainable vector
  scale: Any                # state of the scalar factors: learning-rate schedule (, plateau)


def lr_schedule(lr: float, warmup_iters: int, decay_start: int = 0,
                decay_steps: int = 0) -> optax.Schedule:
  """Official linear warm-up, lr * k / warmup for k <= warmup, then lr (lr = 0 at step 0);
  decay_steps > 0 adds a cosine decay to 0 over steps decay_start .. decay_start + decay_steps:
  lr_k = lr * (1 + cos(pi * clip((k - decay_start) / decay_steps, 0, 1))) / 2."""
  if decay_steps > 0 and decay_start < warmup_iters:
    raise ValueError(f'lr_schedule: the decay ({decay_start}..{decay_start + decay_steps}) '
                     f'starts inside the warm-up ({warmup_iters} steps)')

  def schedule(count):
    k = jnp.asarray(count, jnp.float32)
    f = jnp.minimum(k / warmup_iters, 1.0) if warmup_iters > 0 else jnp.ones_like(k)
    if decay_steps > 0:
      f = f * 0.5 * (1.0 + jnp.cos(jnp.pi * jnp.clip((k - decay_start) / decay_steps, 0.0, 1.0)))
    return lr * f
  return schedule


def _lr_factors(labels: Any, params: Any, by_label: dict[str, float]) -> list[float]:
  """Per leaf of params (in tree order): its learning-rate factor, 0 for 'freeze'."""
  n = len(jax.tree.leaves(params))
  if labels is None:
    return [1.0] * n
  known = {'train': 1.0, **by_label, 'freeze': 0.0}
  leaves = jax.tree.leaves(labels)
  bad = set(leaves) - set(known)
  if bad or len(leaves) != n:
    unknown = f', unknown: {sorted(bad)}' if bad else ''
    raise ValueError(f'labels must give one of {sorted(known)} for each of the {n} parameter '
                     f'arrays (got {len(leaves)} labels{unknown})')
  factors = [float(known[label]) for label in leaves]
  if not any(factors):
    raise ValueError("labels freeze every parameter array: nothing to train")
  return factors


def make_optimizer(*, lr: float, warmup_iters: int, b1: float, b2: float, eps: float, wd: float,
                   grad_clip: float, skip_threshold: float, labels: Any = None,
                   lr_factors: Optional[dict[str, float]] = None, plateau_factor: float = 0.0,
                   plateau_patience: int = 0, plateau_accumulation: int = 1,
                   decay_start: int = 0,
                   decay_steps: int = 0) -> optax.GradientTransformationExtraArgs:
  """The official optimiser (see module docstring). Pass the loss as `update(..., loss=loss)`.
  `labels`: a tree of 'train' / 'freeze' per parameter (fine-tuning); frozen parameters get no
  update, no weight decay, no Adam state, and their gradients do not enter the norm. A label
  named in `lr_factors` trains with its learning rate (and weight decay) times that factor, e.g.
  {'finetune': 0.25} for pretrained weights beside new ones.
  plateau_factor > 0 adds a reduce-on-plateau decay (diverse SR, Prost et al.): the learning rate
  is multiplied by the factor when the training loss, averaged over `plateau_accumulation` steps,
  has not improved for `plateau_patience` such averages (pass the loss as `value=`).
  decay_steps > 0: a cosine decay of the learning rate to 0 from step decay_start (lr_schedule)."""
  # Clip and Adam run on one flat vector: the same arithmetic, but a handful of fused kernels
  # instead of several per parameter array. ffhq256 has 2,250 arrays; compiling its train step
  # took 178 s with per-array updates and 70 s flattened (XLA:CPU, benchmarks/).
  inner = optax.chain(optax.clip_by_global_norm(grad_clip),
                      optax.scale_by_adam(b1=b1, b2=b2, eps=eps))
  # Factors that scale the whole update; applied to the scalar 1 they give the step's factor.
  schedule = lr_schedule(lr, warmup_iters, decay_start, decay_steps)
  factors = [optax.scale_by_learning_rate(schedule)]
  if plateau_factor > 0:
    factors.append(optax.contrib.reduce_on_plateau(
        factor=plateau_factor, patience=plateau_patience, accumulation_size=plateau_accumulation))
  scale = optax.chain(*factors)

  def flat_trainable(tree, flags):
    return jnp.concatenate([jnp.ravel(x) for x, f in zip(jax.tree.leaves(tree), flags) if f])

  lr_factors = dict(lr_factors or {})
  for name, value in lr_factors.items():
    if name in ('train', 'freeze') or not value > 0:
      raise ValueError(f"lr_factors: {name!r}: {value} (names other than 'train' / 'freeze', "
                       'factors > 0)')

  def init_fn(params):
    check_master_params(params)        # float32 master weights and moments (model/precision.py)
    flags = [f > 0 for f in _lr_factors(labels, params, lr_factors)]
    return AdamWState(
        SkipState(inner.init(flat_trainable(params, flags)), jnp.zeros((), jnp.int32),
                  jnp.zeros((), bool), jnp.zeros((), jnp.float32)),
        scale.init(params))

  def update_fn(grads, state: AdamWState, params=None, *, loss: Optional[jax.Array] = None,
                value: Optional[jax.Array] = None, **extra):
    del extra
    if params is None:
      raise ValueError('make_optimizer: update() needs params (decoupled weight decay)')
    factors = _lr_factors(labels, params, lr_factors)
    flags = [f > 0 for f in factors]
    g = float32(flat_trainable(grads, flags))                          # [n_trainable]
    norm = optax.tree.norm(g)
    bad = ~jnp.isfinite(norm)
    if loss is not None:
      bad |= ~jnp.all(jnp.isfinite(loss))
    if skip_threshold > 0:
      bad |= norm >= skip_threshold
    # Sanitise so that NaNs cannot leak through the discarded branch of the select.
    a, new_inner = inner.update(jnp.where(bad, 0.0, g), state.skip.inner)
    new_inner = jax.tree.map(lambda old, new: jnp.where(bad, old, new), state.skip.inner,
                             new_inner)
    factor, new_scale = scale.update(jnp.ones((), a.dtype), state.scale,
                                     **({'value': value} if plateau_factor > 0 else {}))
    s = jnp.where(bad, 0.0, factor)                                     # scalar
    leaves, treedef = jax.tree.flatten(params)
    sizes = [int(np.size(p)) for p, f in zip(leaves, flags) if f]
    parts = iter(jnp.split(s * a, np.cumsum(sizes)[:-1]))

    def array_update(p, m):                      # m * (s a + s wd p); m = 1: no multiply
      u = next(parts).reshape(p.shape) + (s * wd) * p
      return (u if m == 1 else m * u).astype(p.dtype)
    out = [array_update(p, m) if m > 0 else jnp.zeros_like(p) for p, m in zip(leaves, factors)]
    skip = SkipState(new_inner, state.skip.skipped + bad.astype(jnp.int32), bad,
                     norm.astype(jnp.float32))
    return jax.tree.unflatten(treedef, out), AdamWState(skip, new_scale)

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def skip_state(opt_state) -> SkipState:
  """The SkipState inside a make_optimizer state (for logging)."""
  for s in jax.tree.leaves(opt_state, is_leaf=lambda x: isinstance(x, SkipState)):
    if isinstance(s, SkipState):
      return s
  raise ValueError('optimizer state holds no SkipState')
