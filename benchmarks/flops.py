"""Matmul and convolution FLOPs of a function, counted on its jaxpr.

XLA's cost analysis counts the body of a while loop once, so for scanned models it reports a
fraction of the work. This walks the jaxpr instead: every dot_general and conv_general_dilated,
2 * (output elements) * (multiply-adds per output element), with scan bodies multiplied by their
length and rematerialised computations counted each time they run. Elementwise work is left out.
"""
from __future__ import annotations

import math

import jax
from jax.extend import core


def _eqn_flops(eqn) -> float:
  name = eqn.primitive.name
  if name == 'dot_general':
    (lhs_contract, _), _ = eqn.params['dimension_numbers']
    lhs = eqn.invars[0].aval.shape
    out = eqn.outvars[0].aval.shape
    return 2.0 * math.prod(out) * math.prod(lhs[d] for d in lhs_contract)
  if name == 'conv_general_dilated':
    rhs = eqn.invars[1].aval.shape
    out = eqn.outvars[0].aval.shape
    dn = eqn.params['dimension_numbers']
    out_features = rhs[dn.rhs_spec[0]]
    return 2.0 * math.prod(out) * math.prod(rhs) / out_features
  return 0.0


def _sub_jaxprs(params):
  for v in params.values():
    for item in (v if isinstance(v, (tuple, list)) else (v,)):
      if isinstance(item, core.ClosedJaxpr):
        yield item.jaxpr
      elif isinstance(item, core.Jaxpr):
        yield item


def jaxpr_flops(jaxpr) -> float:
  total = 0.0
  for eqn in jaxpr.eqns:
    total += _eqn_flops(eqn)
    reps = eqn.params.get('length', 1) if eqn.primitive.name == 'scan' else 1
    for sub in _sub_jaxprs(eqn.params):
      total += reps * jaxpr_flops(sub)
  return total


def count_flops(fn, *args) -> float:
  """Matmul + convolution FLOPs of one call fn(*args) (args may be ShapeDtypeStructs)."""
  return jaxpr_flops(jax.make_jaxpr(fn)(*args).jaxpr)
