"""The stacked parameter layout: each scanned run of blocks as one pre-stacked entry.

Checkpoints and every public API use the per-block layout (the official names, one entry per
block: `dec_blocks_5`, `dec_blocks_6`, ...). Under hps.scan_blocks a run of identical blocks
[s, e) is one lax.scan over parameters stacked on a leading axis; stacking them inside the jitted
step is a copy (ffhq256: 0.40 GB) that XLA keeps live through the forward and backward passes.
The training state therefore holds each run pre-stacked under one key, `{prefix}{s}_to_{e-1}`
(`dec_blocks_5_to_11`: [7, ...] per leaf), and the model reads it directly (run_params).

A layout spec names the runs: {path of an Encoder/Decoder parameter dict: (prefix, [(s, e)])}.
stack_runs(tree, spec) and unstack_runs(tree) convert any tree with that structure (parameters,
optimizer labels, shapes from jax.eval_shape), numpy or jax, inside jit or not.
"""
from __future__ import annotations

import re
from typing import Any, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

LayoutSpec = Mapping[tuple, tuple[str, Sequence[tuple[int, int]]]]

_RUN_KEY = re.compile(r'^(?P<prefix>.*_)(?P<start>\d+)_to_(?P<last>\d+)$')


def run_key(prefix: str, start: int, end: int) -> str:
  """The key of blocks [start, end) stacked: f'{prefix}{start}_to_{end - 1}'."""
  return f'{prefix}{start}_to_{end - 1}'


def _stack_leaves(*leaves):
  if isinstance(leaves[0], str):                 # labels: one value for the whole run
    if len(set(leaves)) != 1:
      raise ValueError(f'a stacked run of blocks needs one label for all of them, got {leaves}')
    return leaves[0]
  if isinstance(leaves[0], jax.ShapeDtypeStruct):          # abstract trees (eval_shape)
    return jax.ShapeDtypeStruct((len(leaves),) + leaves[0].shape, leaves[0].dtype)
  if all(isinstance(a, np.ndarray) for a in leaves):
    return np.stack(leaves)
  return jnp.stack(leaves)


def _block_of(a: Any, i: int) -> Any:
  if isinstance(a, str):
    return a
  if isinstance(a, jax.ShapeDtypeStruct):
    return jax.ShapeDtypeStruct(a.shape[1:], a.dtype)
  return a[i]


def run_params(params: Mapping, prefix: str, start: int, end: int) -> Any:
  """Parameters of blocks [start, end) stacked on a leading axis: the stored stacked entry when
  `params` is in the stacked layout, else stacked now (a copy)."""
  key = run_key(prefix, start, end)
  if key in params:
    return params[key]
  return jax.tree.map(_stack_leaves, *[params[f'{prefix}{k}'] for k in range(start, end)])


def block_params(params: Mapping, prefix: str, k: int) -> Any:
  """Block k's parameters from either layout (a slice of its run when stacked)."""
  if f'{prefix}{k}' in params:
    return params[f'{prefix}{k}']
  for key, value in params.items():
    m = _RUN_KEY.match(key)
    if m and m['prefix'] == prefix and int(m['start']) <= k <= int(m['last']):
      return jax.tree.map(lambda a: _block_of(a, k - int(m['start'])), value)
  raise KeyError(f'no parameters for {prefix}{k}')


def _at(tree: Mapping, path: tuple) -> Mapping:
  for p in path:
    tree = tree[p]
  return tree


def _replace_at(tree: Mapping, path: tuple, new: Mapping) -> dict:
  if not path:
    return new
  out = dict(tree)
  out[path[0]] = _replace_at(tree[path[0]], path[1:], new)
  return out


def stack_runs(tree: Mapping, spec: LayoutSpec) -> dict:
  """The per-block tree in the stacked layout of `spec` (runs of length 1 stay per block)."""
  for path, (prefix, runs) in spec.items():
    try:
      node = dict(_at(tree, path))
    except KeyError:
      raise KeyError(f'stacked layout: no parameters at {"/".join(path)}') from None
    for s, e in runs:
      if e - s < 2:
        continue
      node[run_key(prefix, s, e)] = jax.tree.map(
          _stack_leaves, *[node.pop(f'{prefix}{k}') for k in range(s, e)])
    tree = _replace_at(tree, path, node)
  return dict(tree)


def unstack_runs(tree: Any) -> Any:
  """Any tree back in the per-block layout: every `{prefix}{s}_to_{last}` entry split in blocks."""
  if not isinstance(tree, Mapping):
    return tree
  out = {}
  for key, value in tree.items():
    m = _RUN_KEY.match(key) if isinstance(key, str) else None
    if m is None:
      out[key] = unstack_runs(value)
      continue
    start, last = int(m['start']), int(m['last'])
    for k in range(start, last + 1):
      out[f"{m['prefix']}{k}"] = jax.tree.map(lambda a, i=k - start: _block_of(a, i), value)
  return out
