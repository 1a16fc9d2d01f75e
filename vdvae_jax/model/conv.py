"""k x k 'same' convolutions on NHWC, in three formulations that compute the same function.

  'lax'        lax.conv_general_dilated and XLA's own gradient convolutions.
  'im2col'     one matmul over the k*k shifted copies of x: [B,H,W,k*k*C] @ [k*k*C, D].
  'custom_vjp' the forward lax convolution with a hand-written backward pass:
                 dx = conv(dy, flip_hw(W)^T)                  (a forward convolution)
                 dW[i, j] = sum_{b,h,w} x_pad[b, h+i, w+j, :]^T dy[b, h, w, :]   (k*k matmuls
                 over flattened, shifted windows, looped so one window is live at a time)

Why three: on XLA:CPU the backward-filter convolution XLA emits for `lax` is fast in straight-line
code but runs on a slow generic path inside `lax.scan` (measured 25.6 s against 1.5 s for 12
blocks of width 512 at 32x32, batch 8). 'custom_vjp' keeps every convolution a forward one and
the kernel gradient plain matmuls, so it is fast inside a scan: 1.41 s, against 2.54 s for
'im2col', whose patch tensor XLA:CPU builds slowly. On accelerators all three are ordinary
convolutions/matmuls.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from vdvae_jax.hparams import CONV_IMPLS


def conv_lax(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """x [B,H,W,C], kernel [k,k,C,D] -> [B,H,W,D], zero padding k//2, stride 1."""
  p = kernel.shape[0] // 2
  return jax.lax.conv_general_dilated(x, kernel, window_strides=(1, 1), padding=((p, p), (p, p)),
                                      dimension_numbers=('NHWC', 'HWIO', 'NHWC'))


def _pad(x: jax.Array, p: int) -> jax.Array:
  return jnp.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))


def conv_im2col(x: jax.Array, kernel: jax.Array) -> jax.Array:
  k, _, c, d = kernel.shape
  h, w = x.shape[1:3]
  xp = _pad(x, k // 2)
  patches = jnp.concatenate([xp[:, i:i + h, j:j + w] for i in range(k) for j in range(k)],
                            axis=-1)                                        # [B, H, W, k*k*C]
  return jnp.einsum('bhwc,cd->bhwd', patches, kernel.reshape(k * k * c, d))


@jax.custom_vjp
def conv_custom_vjp(x: jax.Array, kernel: jax.Array) -> jax.Array:
  return conv_lax(x, kernel)


def _fwd(x, kernel):
  return conv_lax(x, kernel), (x, kernel)


def _bwd(res, dy):
  x, kernel = res
  k = kernel.shape[0]
  b, h, w, c = x.shape
  d = dy.shape[-1]
  p = k // 2
  # Input gradient: correlation of dy with the spatially flipped kernel, in/out swapped.
  dx = conv_lax(dy, jnp.flip(kernel, (0, 1)).transpose(0, 1, 3, 2))      # [B, H, W, C]
  # Kernel gradient, dW[i, j] = dy^T x_pad shifted by (i, j), on flattened images: x padded to
  # [B, H + k - 1, W + k - 1, C], dy zero-padded at the bottom and right to the same size; the
  # shift by (i, j) is the flat offset i (W + k - 1) + j, which stays inside the image for every
  # position where dy is not zero.
  #   xf [N, C] (N = B (H + k - 1) (W + k - 1), plus the largest offset in zeros), dyT [D, N]
  #   dW[i, j]^T = dyT @ xf[off : off + N]          (one contiguous window live at a time)
  # Contracting the contiguous axis of both operands runs at ~1.5-1.8x the FLOP rate of
  # contracting the strided one (x^T dy on NHWC) in XLA:CPU's matmul.
  wp = w + 2 * p
  n = b * (h + 2 * p) * wp
  xf = jnp.pad(x, ((0, 0), (p, p), (p, p), (0, 0))).reshape(n, c)
  xf = jnp.pad(xf, ((0, (k - 1) * (wp + 1)), (0, 0)))
  dyT = jnp.pad(dy, ((0, 0), (0, 2 * p), (0, 2 * p), (0, 0))).reshape(n, d).T

  # Low-precision operands (bfloat16 compute, model/precision.py): accumulate the N-long sums in
  # float32, round once below.
  acc = {} if jnp.finfo(x.dtype).bits >= 32 else dict(preferred_element_type=jnp.float32)

  def tap(_, t):
    window = jax.lax.dynamic_slice(xf, ((t // k) * wp + t % k, 0), (n, c))
    return None, jnp.matmul(dyT, window, **acc) if acc else dyT @ window  # [D, C]

  _, dkT = jax.lax.scan(tap, None, jnp.arange(k * k))                    # [k*k, D, C]
  dk = dkT.transpose(0, 2, 1).reshape(kernel.shape)
  return dx, dk.astype(kernel.dtype)


conv_custom_vjp.defvjp(_fwd, _bwd)

_IMPLS = {'lax': conv_lax, 'im2col': conv_im2col, 'custom_vjp': conv_custom_vjp}


def conv2d(x: jax.Array, kernel: jax.Array, impl: str = 'lax') -> jax.Array:
  """Stride-1 'same' convolution of x [B,H,W,C] with kernel [k,k,C,D] (k odd)."""
  if kernel.shape[0] == 1:
    return jnp.einsum('bhwc,cd->bhwd', x, kernel[0, 0])
  fn = _IMPLS.get(impl)
  if fn is None:
    raise ValueError(f'conv impl must be one of {CONV_IMPLS}, got {impl!r}')
  return fn(x, kernel)
