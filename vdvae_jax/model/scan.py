"""Runs of identical residual blocks applied with `lax.scan` (hps.scan_blocks).

The parameter tree keeps one entry per block (the official names); at apply time the parameters
of a run are stacked and the run becomes one scan, whose body is checkpointed when hps.remat is
set. On XLA:CPU only this form saves memory: jax.checkpoint in an unrolled chain is undone by the
scheduler, under scan it is not.
"""
from __future__ import annotations

from typing import Callable, Hashable, Sequence

import jax
import jax.numpy as jnp


def runs(keys: Sequence[Hashable]) -> list[tuple[int, int]]:
  """Maximal [start, end) ranges of equal, non-None consecutive keys, length >= 2."""
  out, i = [], 0
  while i < len(keys):
    j = i + 1
    while keys[i] is not None and j < len(keys) and keys[j] == keys[i]:
      j += 1
    if j - i >= 2:
      out.append((i, j))
    i = j
  return out


def stack(trees: Sequence) -> object:
  return jax.tree.map(lambda *a: jnp.stack(a), *trees)


def scan_run(body: Callable, carry, stacked_params, per_block_inputs, remat: bool):
  """carry, ys = scan over (params_k, inputs_k) of body(carry, params_k, inputs_k)."""
  f = lambda c, pk: body(c, pk[0], pk[1])  # noqa: E731
  if remat:
    f = jax.checkpoint(f)
  return jax.lax.scan(f, carry, (stacked_params, per_block_inputs))
