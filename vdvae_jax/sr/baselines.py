"""Baselines of the course report (CIFAR-10, 8x8 -> 32x32 after Gaussian blur and subsampling):

* SRCNN (Dong et al. 2015): bicubic upsampling, then conv 9x9 (64) - ReLU - conv 1x1 (32) - ReLU -
  conv 5x5 (3); trained with the MSE to the HR image. Deterministic: every "sample" is the same.
* A plain conditional VAE: q(z | x, y) and p(x | z, y) with a conv encoder/decoder, prior N(0, I),
  a latent of 192 dimensions (the size of the 8x8x3 LR input) and a Gaussian observation model
  with a fixed standard deviation of 0.01 on pixels in [0, 1], ReLU everywhere and a sigmoid on
  the decoder output, as the report describes. Samples: z ~ N(0, t^2 I), x = decoder(z, y).

Images are uint8 in and out; internally x, y are floats in [0, 1].
"""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from vdvae_jax.data.degradations import imresize_jax

OBS_STD = 0.01
LATENT = 192


def _unit(u8: jax.Array) -> jax.Array:
  return u8.astype(jnp.float32) / 255.0


def bicubic_up(y: jax.Array, scale: int) -> jax.Array:
  """[B, h, w, 3] floats -> [B, h*s, w*s, 3] with MATLAB-bicubic weights."""
  return imresize_jax(y, scale=scale)


class SRCNN(nn.Module):
  scale: int

  @nn.compact
  def __call__(self, y: jax.Array) -> jax.Array:          # y [B, h, w, 3] in [0, 1]
    x = bicubic_up(y, self.scale)
    h = nn.relu(nn.Conv(64, (9, 9), name='conv1')(x))
    h = nn.relu(nn.Conv(32, (1, 1), name='conv2')(h))
    return nn.Conv(3, (5, 5), name='conv3')(h)             # [B, H, W, 3]


class CVAE(nn.Module):
  scale: int
  latent: int = LATENT

  def setup(self):
    self.enc = [nn.Conv(32, (3, 3), strides=2), nn.Conv(64, (3, 3), strides=2),
                nn.Conv(128, (3, 3), strides=2)]
    self.enc_out = nn.Dense(2 * self.latent)
    self.dec_in = nn.Dense(4 * 4 * 128)
    self.dec = [nn.ConvTranspose(64, (3, 3), strides=(2, 2)),
                nn.ConvTranspose(32, (3, 3), strides=(2, 2)),
                nn.ConvTranspose(32, (3, 3), strides=(2, 2))]
    self.dec_out = nn.Conv(3, (3, 3))

  def encode(self, x, y):
    """q(z | x, y): mean and log std [B, latent]."""
    h = jnp.concatenate([x, bicubic_up(y, self.scale)], axis=-1)
    for c in self.enc:
      h = nn.relu(c(h))
    return jnp.split(self.enc_out(h.reshape(h.shape[0], -1)), 2, axis=-1)

  def decode(self, z, y):
    """Mean of p(x | z, y) in [0, 1]: [B, H, W, 3]."""
    b = z.shape[0]
    h = nn.relu(self.dec_in(z)).reshape(b, 4, 4, 128)
    for c in self.dec:
      h = nn.relu(c(h))
    h = jnp.concatenate([h, bicubic_up(y, self.scale)], axis=-1)
    return nn.sigmoid(self.dec_out(h))

  def __call__(self, x, y, eps):
    """Per-image negative ELBO (nats): Gaussian NLL with std 0.01 + KL(q || N(0, I))."""
    m, logs = self.encode(x, y)
    z = m + jnp.exp(logs) * eps
    mean = self.decode(z, y)
    nll = (0.5 * ((x - mean) / OBS_STD) ** 2 + jnp.log(OBS_STD) + 0.5 * jnp.log(2 * jnp.pi)).sum(
        axis=(1, 2, 3))
    kl = (-0.5 - logs + 0.5 * (jnp.exp(2 * logs) + m ** 2)).sum(axis=-1)
    return nll + kl, mean


def init(method: str, scale: int, hr_size: int, rng: jax.Array) -> dict:
  lr = hr_size // scale
  y = jnp.zeros((1, lr, lr, 3))
  if method == 'srcnn':
    return SRCNN(scale).init(rng, y)['params']
  x = jnp.zeros((1, hr_size, hr_size, 3))
  return CVAE(scale).init(rng, x, y, jnp.zeros((1, LATENT)))['params']


def loss_fn(method: str, scale: int):
  """loss_fn(params, batch, key) for the train step (batch: 'image' HR u8, 'lr' LR u8)."""
  def fn(params, batch, key):
    x, y = _unit(batch['image']), _unit(batch['lr'])
    if method == 'srcnn':
      mse = jnp.mean((SRCNN(scale).apply({'params': params}, y) - x) ** 2)
      return mse, dict(mse=mse)
    eps = jax.random.normal(key, (x.shape[0], LATENT))
    nelbo, mean = CVAE(scale).apply({'params': params}, x, y, eps)
    mse = jnp.mean((mean - x) ** 2)
    # Per sub-pixel, so the magnitude is comparable across image sizes.
    return nelbo.mean() / x[0].size, dict(mse=mse)
  return fn


def super_resolve(method: str, scale: int, params: dict, lr_uint8: jax.Array, n_samples: int,
                  temperature: float, rng: jax.Array) -> jax.Array:
  """uint8 [B, n, H, W, 3]."""
  y = _unit(lr_uint8)
  b = y.shape[0]
  if method == 'srcnn':
    x = SRCNN(scale).apply({'params': params}, y)
    x = jnp.repeat(x[:, None], n_samples, axis=1)
  else:
    z = temperature * jax.random.normal(rng, (b * n_samples, LATENT))
    x = CVAE(scale).apply({'params': params}, z, jnp.repeat(y, n_samples, axis=0),
                          method=CVAE.decode)
    x = x.reshape((b, n_samples) + x.shape[1:])
  return jnp.clip(jnp.round(x * 255.0), 0, 255).astype(jnp.uint8)
