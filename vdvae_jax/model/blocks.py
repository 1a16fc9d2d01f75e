"""Convolution and the bottleneck residual block of VDVAE (official `vae.Block`, `get_conv`)."""
from __future__ import annotations

import functools
import math
from typing import Optional

import flax.linen as nn
import jax
import jax.numpy as jnp


def torch_conv_init(scale: float = 1.0):
  """PyTorch's default Conv2d weight init U(-b, b), b = 1/sqrt(fan_in), times `scale`.

  (kaiming_uniform with a = sqrt(5)); kernel layout HWIO, fan_in = kh * kw * in.
  """
  def init(key, shape, dtype=jnp.float32):
    fan_in = shape[0] * shape[1] * shape[2]
    bound = scale / math.sqrt(fan_in)
    return jax.random.uniform(key, shape, dtype, -bound, bound)
  return init


def gelu(x: jax.Array) -> jax.Array:
  """Exact (erf) GELU, as torch.nn.functional.gelu; jax.nn.gelu defaults to the tanh form."""
  return jax.nn.gelu(x, approximate=False)


class Conv2d(nn.Module):
  """Stride-1 conv with zero 'same' padding on NHWC. Params: kernel [k,k,in,out], bias [out].

  The official `get_conv` zeroes every bias at init; `scale` multiplies the default weight init
  (0 for zero-initialised convs, sqrt(1/n_blocks) for the residual outputs).
  """
  features: int
  kernel_size: int = 1
  scale: float = 1.0
  im2col: bool = False      # k x k conv as one matmul over shifted copies (fast backward in scan)

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    k = self.kernel_size
    kernel = self.param('kernel', torch_conv_init(self.scale), (k, k, x.shape[-1], self.features))
    bias = self.param('bias', nn.initializers.zeros, (self.features,))
    if k == 1:
      y = jnp.einsum('bhwc,cd->bhwd', x, kernel[0, 0])
    elif self.im2col:
      p = k // 2
      b, h, w, c = x.shape
      xp = jnp.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
      patches = jnp.concatenate([xp[:, dy:dy + h, dx:dx + w] for dy in range(k)
                                 for dx in range(k)], axis=-1)          # [B, H, W, k*k*C]
      y = jnp.einsum('bhwc,cd->bhwd', patches, kernel.reshape(k * k * c, self.features))
    else:
      p = k // 2
      y = jax.lax.conv_general_dilated(
          x, kernel, window_strides=(1, 1), padding=((p, p), (p, p)),
          dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
    return y + bias


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
  im2col: bool = False

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    k = 3 if self.use_3x3 else 1
    h = Conv2d(self.middle_width, 1, name='c1')(gelu(x))
    h = Conv2d(self.middle_width, k, im2col=self.im2col, name='c2')(gelu(h))
    h = Conv2d(self.middle_width, k, im2col=self.im2col, name='c3')(gelu(h))
    last_scale = 0.0 if self.zero_last else self.last_scale
    h = Conv2d(self.out_width, 1, scale=last_scale, name='c4')(gelu(h))
    out = x + h if self.residual else h
    if self.down_rate is not None:
      out = avg_pool(out, self.down_rate)
    return out


def block_class(hps, remat: Optional[bool] = None):
  """The Block constructor for hps's compute options: rematerialised in the backward pass
  (hps.remat, unless `remat` overrides it) and im2col 3x3 convolutions (hps.conv_impl)."""
  cls = nn.remat(Block) if (hps.remat if remat is None else remat) else Block
  return functools.partial(cls, im2col=hps.conv_impl == 'im2col')
