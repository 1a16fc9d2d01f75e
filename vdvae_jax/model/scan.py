"""Runs of identical residual blocks applied with `lax.scan` (hps.scan_blocks).

A run becomes one scan over its blocks' parameters stacked on a leading axis (pre-stacked in the
training state, stacked at apply time otherwise: model/layout.py), whose body is checkpointed
when hps.remat is set. On XLA:CPU only this form saves memory: jax.checkpoint in an unrolled
chain is undone by the scheduler, under scan it is not.
"""
from __future__ import annotations

from typing import Callable, Hashable, Optional, Sequence

import jax
import jax.numpy as jnp

from vdvae_jax.hparams import REMAT_POLICIES
from vdvae_jax.model.precision import narrow


def runs(keys: Sequence[Hashable], min_len: int = 2) -> list[tuple[int, int]]:
  """Maximal [start, end) ranges of equal, non-None consecutive keys, length >= min_len."""
  out, i = [], 0
  while i < len(keys):
    j = i + 1
    while keys[i] is not None and j < len(keys) and keys[j] == keys[i]:
      j += 1
    if j - i >= min_len and keys[i] is not None:
      out.append((i, j))
    i = j
  return out


# The jax.checkpoint policy of each name in hparams.REMAT_POLICIES.
CHECKPOINT_POLICIES = {
    # keep only the loop body's inputs; recompute everything else in the backward pass
    'recompute_all': None,
    # also keep every convolution's output (tagged 'conv' in blocks.Conv2d): the backward
    # pass recomputes only GELUs, additions and the like
    'save_convs': jax.checkpoint_policies.save_only_these_names('conv'),
}


def checkpointed(f: Callable, remat: Optional[str]) -> Callable:
  """jax.checkpoint(f) under the named policy (REMAT_POLICIES); f itself when remat is None."""
  if remat is None:
    return f
  if remat not in CHECKPOINT_POLICIES:
    raise ValueError(f'remat_policy must be one of {REMAT_POLICIES}, got {remat!r}')
  return jax.checkpoint(f, policy=CHECKPOINT_POLICIES[remat])


def remat_policy(hps) -> Optional[str]:
  """The policy name when hps.remat is set, else None."""
  return hps.remat_policy if hps.remat else None


def _has_narrow(tree) -> bool:
  return any(narrow(a) for a in jax.tree.leaves(tree))


def _block_of_run(stacked, k: jax.Array):
  """Block k of stacked parameters, taken inside a loop body (bfloat16 parameters).

  XLA:CPU turns bfloat16 loop state into float32 before the loop, so bfloat16 parameters
  scanned over (or closed over and sliced) became a float32 copy of the whole stack: the ffhq256
  ELBO with bfloat16 parameters kept 0.40 GiB more temporaries than with float32 ones. Here the
  stack is closed over and sliced as its 16-bit integer bits, behind an optimization barrier
  with the index (so neither the bitcast nor a conversion is hoisted out of the loop): only
  block k is ever converted. The same values; float32 parameters never take this path.
  """
  stacked, k = jax.lax.optimization_barrier((stacked, k))

  def one(a):
    if not narrow(a):
      return jax.lax.dynamic_index_in_dim(a, k, keepdims=False)
    bits = jax.lax.bitcast_convert_type(a, jnp.uint16)
    return jax.lax.bitcast_convert_type(jax.lax.dynamic_index_in_dim(bits, k, keepdims=False),
                                        a.dtype)
  return jax.tree.map(one, stacked)


def scan_run(body: Callable, carry, stacked_params, per_block_inputs, remat: Optional[str]):
  """carry, ys = scan over (params_k, inputs_k) of body(carry, params_k, inputs_k); the body is
  checkpointed under the policy named by `remat` (None: not checkpointed)."""
  if _has_narrow(stacked_params):                  # bfloat16 parameters: see _block_of_run
    n = jax.tree.leaves(stacked_params)[0].shape[0]
    f = checkpointed(lambda c, ki: body(c, _block_of_run(stacked_params, ki[0]), ki[1]), remat)
    return jax.lax.scan(f, carry, (jnp.arange(n), per_block_inputs))
  f = checkpointed(lambda c, pk: body(c, pk[0], pk[1]), remat)
  return jax.lax.scan(f, carry, (stacked_params, per_block_inputs))


def isolate(body: Callable, params, inputs, remat: Optional[str]):
  """body(params, inputs) as a scan of length one (a while loop the compiler schedules, and
  rematerialises, as a unit); inputs and outputs may have any shapes."""
  if _has_narrow(params):                          # bfloat16 parameters: see _block_of_run
    stacked = jax.tree.map(lambda a: a[None], params)
    f = checkpointed(lambda c, ki: (c, body(_block_of_run(stacked, ki[0]), ki[1])), remat)
    _, out = jax.lax.scan(f, None, (jnp.arange(1), jax.tree.map(lambda a: a[None], inputs)))
  else:
    f = checkpointed(lambda c, pk: (c, body(*pk)), remat)
    _, out = jax.lax.scan(f, None, jax.tree.map(lambda a: a[None], (params, inputs)))
  return jax.tree.map(lambda a: a[0], out)


# XLA's while-loop simplifier inlines loops of trip count one into their caller, which undoes
# isolate(): the block's backward pass then interleaves with its neighbours' and its temporaries
# stay live together (ffhq256 test model: 6.25 GiB of XLA temporaries kept, 10.05 GiB inlined).
COMPILER_OPTIONS = {'xla_disable_hlo_passes': 'simplify-while-loops'}
# On XLA:CPU, LLVM optimisation level 1 instead of 2 for the elementwise kernels: the ffhq256
# train step compiled in 63.9 s instead of 73.5 s and ran in 18.1 s instead of 18.3 s (level 0:
# 47.8 s to compile, 43.3 s a step). Convolutions and matmuls are library calls either way.
CPU_COMPILER_OPTIONS = {'xla_backend_optimization_level': 1}


def compiler_options(hps) -> dict:
  """Options for jax.jit(..., compiler_options=) of a step that differentiates the model."""
  if not hps.scan_blocks:
    return {}
  cpu = jax.default_backend() == 'cpu'
  return dict(COMPILER_OPTIONS, **(CPU_COMPILER_OPTIONS if cpu else {}))
