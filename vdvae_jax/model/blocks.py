"""Convolution and the bottleneck residual block of VDVAE (official `vae.Block`, `get_conv`).

Every module takes Flax's `dtype` (compute) and `param_dtype` (storage); which dtype each piece
computes in is model/precision.py's policy."""
from __future__ import annotations

import functools
import math
from typing import Optional, Sequence, Union

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax.ad_checkpoint import checkpoint_name

from vdvae_jax.model.conv import conv2d
from vdvae_jax.model.precision import Dtype, broadcast_param, cast, dtypes, float32
from vdvae_jax.model.scan import CHECKPOINT_POLICIES


def torch_conv_init(scale: float = 1.0):
  """PyTorch's default Conv2d weight init U(-b, b), b = 1/sqrt(fan_in), times `scale`.

  (kaiming_uniform with a = sqrt(5)); kernel layout HWIO, fan_in = kh * kw * in.
  """
  def init(key, shape, dtype=jnp.float32):
    fan_in = shape[0] * shape[1] * shape[2]
    bound = scale / math.sqrt(fan_in)
    return jax.random.uniform(key, shape, dtype, -bound, bound)
  return init


@jax.custom_vjp
def gelu(x: jax.Array) -> jax.Array:
  """Exact (erf) GELU, as torch.nn.functional.gelu; jax.nn.gelu defaults to the tanh form.

  gelu(x) = x Phi(x), gelu'(x) = Phi(x) + x phi(x). The custom VJP keeps only x for the backward
  pass (autodiff of the erfc form keeps erfc(-x/sqrt 2) as well, a second activation-sized
  tensor per GELU) and recomputes the derivative there, fused into one elementwise pass.
  bfloat16 x is evaluated in float32 and rounded once (model/precision.py).
  """
  v = float32(x)
  y = jax.nn.gelu(v, approximate=False)
  return y if v is x else y.astype(x.dtype)


def _gelu_fwd(x):
  return gelu(x), x


def _gelu_bwd(x_in, g_in):
  x, g = float32(x_in), float32(g_in)
  # Phi(x) via erf, not the forward's erfc: XLA would otherwise share (and keep alive) the
  # forward's erfc tensor between a rematerialised forward and this backward.
  cdf = 0.5 + 0.5 * jax.lax.erf(x * (1 / math.sqrt(2)))                 # Phi(x)
  pdf = jnp.exp(-0.5 * x * x) * (1 / math.sqrt(2 * math.pi))            # phi(x)
  dx = g * (cdf + x * pdf)
  return (dx if x is x_in else dx.astype(x_in.dtype),)


gelu.defvjp(_gelu_fwd, _gelu_bwd)


class Conv2d(nn.Module):
  """Stride-1 conv with zero 'same' padding on NHWC. Params: kernel [k,k,in,out], bias [out].

  The official `get_conv` zeroes every bias at init; `scale` multiplies the default weight init
  (0 for zero-initialised convs, sqrt(1/n_blocks) for the residual outputs). Inputs and
  parameters are cast to `dtype`; a head (`float32_result`, 1x1 only) accumulates and returns
  float32 when `dtype` is narrower (model/precision.py).
  """
  features: int
  kernel_size: int = 1
  scale: float = 1.0
  impl: str = 'lax'         # formulation of k x k convs, see model/conv.py
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32
  float32_result: bool = False

  @nn.compact
  def __call__(self, x: Union[jax.Array, Sequence[jax.Array]]) -> jax.Array:
    """x [B,H,W,C], or for a 1x1 conv a list of parts whose channel concatenation is the
    input: the kernel is sliced per part instead, so the concatenation is never materialised."""
    parts = list(x) if isinstance(x, (list, tuple)) else [x]
    k = self.kernel_size
    c_in = sum(p.shape[-1] for p in parts)
    kernel = self.param('kernel', torch_conv_init(self.scale), (k, k, c_in, self.features),
                        self.param_dtype)
    bias = self.param('bias', nn.initializers.zeros, (self.features,), self.param_dtype)
    parts = [cast(p, self.dtype) for p in parts]
    kernel = cast(kernel, self.dtype)
    # A head in low precision: float32 accumulation and result, float32 bias.
    acc = {}
    if self.float32_result and jnp.finfo(kernel.dtype).bits < 32:
      if k != 1:
        raise ValueError('float32_result is only supported by 1x1 convolutions')
      acc = dict(preferred_element_type=jnp.float32)
    if len(parts) == 1:
      y = jnp.einsum('bhwc,cd->bhwd', parts[0], kernel[0, 0], **acc) if acc else \
          conv2d(parts[0], kernel, self.impl)
    else:
      if k != 1:
        raise ValueError('a list input is only supported by 1x1 convolutions')
      # conv(concat_i x_i, W) = sum_i x_i @ W[c_i : c_i + C_i]
      offsets = np.cumsum([0] + [p.shape[-1] for p in parts])
      y = sum(jnp.einsum('bhwc,cd->bhwd', p, kernel[0, 0, a:b], **acc)
              for p, a, b in zip(parts, offsets[:-1], offsets[1:]))
    bias = float32(bias) if acc else broadcast_param(bias, y.shape, self.dtype)
    # Tagged for the 'save_convs' rematerialisation policy (model/scan.py).
    return checkpoint_name(y + bias, 'conv')


def avg_pool(x: jax.Array, rate: int) -> jax.Array:
  """avg_pool2d(kernel=stride=rate) on NHWC."""
  b, h, w, c = x.shape
  return x.reshape(b, h // rate, rate, w // rate, rate, c).mean(axis=(2, 4))


def upsample_nearest(x: jax.Array, factor: int) -> jax.Array:
  """F.interpolate(scale_factor=factor), mode 'nearest', on NHWC."""
  b, h, w, c = x.shape
  x = jnp.broadcast_to(x[:, :, None, :, None, :], (b, h, factor, w, factor, c))
  return x.reshape(b, h * factor, w * factor, c)


class Block(nn.Module):
  """x_hat = c4(gelu(c3(gelu(c2(gelu(c1(gelu(x)))))))); out = x + x_hat if residual; then
  average-pool by `down_rate` (after the residual). c2/c3 are 3x3 iff `use_3x3` (res > 2)."""
  middle_width: int
  out_width: int
  down_rate: Optional[int] = None
  residual: bool = False
  use_3x3: bool = True
  zero_last: bool = False
  last_scale: float = 1.0
  conv_impl: str = 'lax'
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32
  float32_result: bool = False     # a head: c4 returns float32 (Conv2d, model/precision.py)

  @nn.compact
  def __call__(self, x: jax.Array, *more: jax.Array) -> jax.Array:
    """x [B,H,W,C]; extra arrays `more` are concatenated to x on channels (non-residual blocks):
    the first 1x1 conv takes the parts separately, so the concatenation is never built."""
    k = 3 if self.use_3x3 else 1
    if more and self.residual:
      raise ValueError('a residual block takes one input')
    conv = functools.partial(Conv2d, dtype=self.dtype, param_dtype=self.param_dtype)
    h = conv(self.middle_width, 1, name='c1')([gelu(cast(p, self.dtype)) for p in (x, *more)])
    h = conv(self.middle_width, k, impl=self.conv_impl, name='c2')(gelu(h))
    h = conv(self.middle_width, k, impl=self.conv_impl, name='c3')(gelu(h))
    last_scale = 0.0 if self.zero_last else self.last_scale
    h = conv(self.out_width, 1, scale=last_scale, float32_result=self.float32_result,
             name='c4')(gelu(h))
    if self.residual:
      x = cast(x, self.dtype)
    out = x + h if self.residual else h
    if self.down_rate is not None:
      out = avg_pool(out, self.down_rate)
    return out


def block_class(hps, remat: Optional[bool] = None):
  """The Block constructor for hps's compute options: rematerialised in the backward pass
  (hps.remat, unless `remat` overrides it), the 3x3 convolution formulation (hps.conv_impl) and
  the compute and parameter dtypes (hps.dtype, hps.param_dtype)."""
  if hps.remat if remat is None else remat:
    cls = nn.remat(Block, policy=CHECKPOINT_POLICIES[hps.remat_policy])
  else:
    cls = Block
  dtype, param_dtype = dtypes(hps)
  return functools.partial(cls, conv_impl=hps.conv_impl, dtype=dtype, param_dtype=param_dtype)
