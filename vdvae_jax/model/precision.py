"""Mixed precision: what computes in bfloat16 and what stays float32 (the one place that says so).

Two options (hps.dtype, hps.param_dtype, names in hparams.DTYPES):
  dtype        compute dtype of the network: 'float32' (default) | 'bfloat16'
  param_dtype  dtype the parameters are stored in: 'float32' (default) | 'bfloat16', the latter for
               inference only (ELBO, sampling, super-resolution); training refuses it, because
               its master weights must be float32.

'float32' is the reference program: every cast below is then the identity and is not emitted,
so the jaxpr is the one of the code before these options existed (tests/test_precision.py), and
float64 arrays under jax_enable_x64 stay float64. With param_dtype='bfloat16' and dtype='float32'
the parameters are cast up to float32 where they are used.

Under dtype='bfloat16' (following Flax's dtype / param_dtype convention):
  bfloat16   each module casts its inputs and parameters to bfloat16 (`cast`) and returns
             bfloat16: every convolution (the 1x1 ones and the three 3x3 formulations of
             conv.py), GELU (evaluated in float32 inside the fusion, rounded once), average
             pooling (jnp.mean sums in float32), nearest upsampling and the decoder's mix-in, so
             the residual stream, the encoder activations, the decoder state and px_z are
             bfloat16. The 3x3 custom-VJP kernel gradient accumulates in float32 and is rounded
             once; biases, the output gain and SR gates are broadcast before their cast
             (`broadcast_param`), so their gradients sum over B, H, W in float32.
  heads      the 1x1 convolutions whose outputs feed float32 code take bfloat16 inputs but
             accumulate and return float32 (`Conv2d(float32_result=True)`): the posterior and
             prior heads (last conv of the `enc` and `prior` blocks; the prior's state features
             are cast back to bfloat16), SR's top prior and q_psi heads, and the DMoL head
             (`out_net`), whose means bfloat16 would round by up to half an 8-bit bin.
  float32    always, whatever the option (`float32` at the entry of each function): the
             posterior/prior means and log-std, their `exp` and the latent draw
             z = exp(logsigma) eps + mu (gaussian.py); the Gaussian KL and its sums; the DMoL
             log-likelihood with its log-sum-exp and 5-bit / 8-bit edge branches, its sampler
             and pixel rules (likelihood.py); the ELBO terms and loss reductions (vae.py,
             train/losses.py).
  training   float32 master parameters (`check_master_params` in the optimizer's init; the
             config refuses param_dtype='bfloat16'); the backward pass runs in bfloat16 and each
             parameter's gradient becomes float32 at the cast from its float32 master copy
             (`float32` in the train step): the global gradient norm, clipping, the skip test,
             Adam moments, the update and the EMA are float32.
Scanned runs of bfloat16 parameters are sliced as 16-bit integers inside the loop (scan.py), so
XLA:CPU does not make a float32 copy of the stack.

No loss scaling: bfloat16 has float32's 8-bit exponent, so gradients neither underflow nor
overflow where float32 ones do not (float16, with 5 exponent bits, is what needs it).
"""
from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

Dtype = Any

_DTYPES = {'float32': jnp.float32, 'bfloat16': jnp.bfloat16}


def dtypes(hps) -> tuple[Dtype, Dtype]:
  """(compute dtype, parameter dtype) of hps.dtype / hps.param_dtype as jnp dtypes."""
  return _DTYPES[hps.dtype], _DTYPES[hps.param_dtype]


def _is_float(x) -> bool:
  return jnp.issubdtype(jnp.result_type(x), jnp.floating)


def narrow(x) -> bool:
  """Whether x is a float narrower than float32 (bfloat16)."""
  return _is_float(x) and jnp.finfo(jnp.result_type(x)).bits < 32


def cast(x: jax.Array, dtype: Dtype) -> jax.Array:
  """x in compute dtype `dtype`. float32: narrower floats (bfloat16) go up to float32, float32
  and float64 stay (no cast emitted); bfloat16: every float becomes bfloat16. Non-floats pass."""
  if x is None or not _is_float(x):
    return x
  dtype = jnp.dtype(dtype)
  target = jnp.promote_types(x.dtype, dtype) if dtype == jnp.float32 else dtype
  return x if x.dtype == target else x.astype(target)


def float32(x: jax.Array) -> jax.Array:
  """x in at least float32 (bfloat16 -> float32; float32, float64 unchanged): the boundary of
  every numerically sensitive computation."""
  return cast(x, jnp.float32)


def broadcast_param(p: jax.Array, shape: tuple[int, ...], dtype: Dtype) -> jax.Array:
  """A parameter (bias, gain, gate) for elementwise use with an array of `shape` in compute dtype
  `dtype`. When a cast is needed it follows the broadcast, so the gradient's sum over the
  broadcast axes (B, H, W) runs in the parameter's float32, not in bfloat16; otherwise p itself."""
  if cast(p, dtype) is p:
    return p
  return cast(jnp.broadcast_to(p, shape), dtype)


def cast_tree(tree: Any, dtype: Dtype) -> Any:
  """Every floating leaf of `tree` cast to `dtype` exactly (e.g. parameters for storage)."""
  def one(a):
    if not _is_float(a) or jnp.result_type(a) == jnp.dtype(dtype):
      return a
    return a.astype(dtype) if isinstance(a, (np.ndarray, jax.Array)) else jnp.asarray(a, dtype)
  return jax.tree.map(one, tree)


def check_master_params(params: Any) -> None:
  """Raise ValueError unless every floating parameter is at least float32 (training's master
  weights; bfloat16 parameters are for inference)."""
  low = sorted({str(jnp.result_type(a)) for a in jax.tree.leaves(params) if narrow(a)})
  if low:
    raise ValueError(f'training needs float32 master parameters, got {", ".join(low)} ones: '
                     "param_dtype='bfloat16' is for inference (ELBO, sampling, SR); train with "
                     "param_dtype='float32' (dtype='bfloat16' gives bfloat16 compute)")
