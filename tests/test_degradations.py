"""Tests of vdvae_jax.data.degradations against an independent loop-based port of MATLAB imresize,
known MATLAB facts, jax.image.resize, and the Gaussian blur + subsampling definition."""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from skimage import data as skdata

from vdvae_jax.data import degradations as D

SCALES = (2, 3, 4, 8, 16)
PHOTOS = ('astronaut', 'coffee', 'chelsea', 'rocket')


def photo(name: str) -> np.ndarray:
  return getattr(skdata, name)()  # [H, W, 3] uint8


def psnr(a: np.ndarray, b: np.ndarray) -> float:
  mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
  return math.inf if mse == 0 else 10 * math.log10(255.0 ** 2 / mse)


# ---------------------------------------------------------------------------------------------
# Oracle: MATLAB's imresize (bicubic, antialiasing) written out one output pixel at a time.


def _keys(t: float) -> float:
  t = abs(t)
  if t <= 1:
    return 1.5 * t ** 3 - 2.5 * t ** 2 + 1
  if t <= 2:
    return -0.5 * t ** 3 + 2.5 * t ** 2 - 4 * t + 2
  return 0.0


def _oracle_axis0(x: np.ndarray, out_len: int, scale: float) -> np.ndarray:
  """Resize float x [n, ...] along axis 0 to out_len samples."""
  n = x.shape[0]
  if scale < 1:
    width = 4.0 / scale
    kern = lambda t: scale * _keys(scale * t)
  else:
    width = 4.0
    kern = _keys
  out = np.zeros((out_len,) + x.shape[1:])
  for o in range(1, out_len + 1):  # 1-based, as MATLAB
    centre = o / scale + 0.5 * (1 - 1 / scale)
    first = math.floor(centre - width / 2)
    taps = [(j, kern(centre - j)) for j in range(first, first + math.ceil(width) + 2)]
    total = sum(w for _, w in taps)
    for j, w in taps:
      if w == 0:
        continue
      i = j
      while i < 1 or i > n:  # symmetric border: 0 -> 1, -1 -> 2, n + 1 -> n, n + 2 -> n - 1
        i = 1 - i if i < 1 else 2 * n + 1 - i
      out[o - 1] += (w / total) * x[i - 1]
  return out


def oracle_imresize_uint8(img: np.ndarray, scale: float) -> np.ndarray:
  """uint8 [H, W, C] -> uint8, MATLAB order (rows first for equal scales), uint8 after each pass."""
  x = img.astype(np.float64)
  for axis in (0, 1):
    out_len = math.ceil(scale * img.shape[axis])
    x = np.moveaxis(_oracle_axis0(np.moveaxis(x, axis, 0), out_len, scale), 0, axis)
    x = np.floor(np.clip(x, 0, 255) + 0.5)
  return x.astype(np.uint8)


@pytest.mark.parametrize('scale', SCALES)
@pytest.mark.parametrize('name', PHOTOS)
def test_imresize_down_matches_oracle(name, scale):
  hr = D.modcrop(photo(name), scale)
  ours = D.imresize(hr, 1.0 / scale)
  ref = oracle_imresize_uint8(hr, 1.0 / scale)
  assert ours.shape == ref.shape == (hr.shape[0] // scale, hr.shape[1] // scale, 3)
  assert ours.dtype == np.uint8
  p = psnr(ours, ref)
  assert p >= 100, f'{name} x1/{scale}: PSNR {p:.2f} dB vs oracle'


@pytest.mark.parametrize('name', ('astronaut', 'coffee'))
def test_imresize_up_x4_matches_oracle(name):
  lr = photo(name)[100:164, 200:248]  # [64, 48, 3]
  ours = D.imresize(lr, 4)
  ref = oracle_imresize_uint8(lr, 4)
  assert ours.shape == ref.shape == (256, 192, 3)
  p = psnr(ours, ref)
  assert p >= 100, f'{name} x4 up: PSNR {p:.2f} dB vs oracle'


def test_degrade_bicubic_is_imresize_of_modcrop():
  img = photo('chelsea')  # 300 x 451
  lr = D.degrade(img, 4)
  assert lr.shape == (75, 112, 3)
  np.testing.assert_array_equal(lr, oracle_imresize_uint8(img[:300, :448], 0.25))


# ---------------------------------------------------------------------------------------------
# Known MATLAB facts.


@pytest.mark.parametrize('scale', (0.5, 1 / 3, 0.25, 1 / 16, 2, 4))
def test_constant_stays_constant(scale):
  c = np.full((48, 64, 3), 173, np.uint8)
  out = D.imresize(c, scale)
  assert np.all(out == 173)
  f = D.imresize(np.full((48, 64, 3), 0.3), scale)
  np.testing.assert_allclose(f, 0.3, atol=1e-12)


def test_downscale_by_2_reproduces_linear_ramp():
  h, w = 40, 36
  ramp_r = np.broadcast_to(np.arange(h, dtype=np.float64)[:, None, None], (h, w, 1))  # value = row
  ramp_c = np.broadcast_to(np.arange(w, dtype=np.float64)[None, :, None], (h, w, 1))  # value = col
  out_r, out_c = D.imresize(ramp_r, 0.5)[..., 0], D.imresize(ramp_c, 0.5)[..., 0]  # [20, 18]
  centre_r = 2 * np.arange(h // 2) + 0.5  # LR pixel o covers HR pixels 2o and 2o + 1
  centre_c = 2 * np.arange(w // 2) + 0.5
  m = 3  # LR pixels whose kernel reaches the border are left out
  np.testing.assert_allclose(out_r[m:-m], np.tile(centre_r[m:-m, None], (1, w // 2)), atol=1e-10)
  np.testing.assert_allclose(out_c[:, m:-m], np.tile(centre_c[None, m:-m], (h // 2, 1)), atol=1e-10)


def test_shapes_down_up_and_output_shape():
  x = photo('astronaut')
  assert D.imresize(D.imresize(x, 1 / 4), 4).shape == x.shape
  y = np.zeros((30, 45, 3), np.uint8)
  assert D.imresize(y, 1 / 4).shape == (8, 12, 3)  # ceil(7.5), ceil(11.25), as MATLAB
  assert D.imresize(D.imresize(y, 1 / 4), 4).shape == (32, 48, 3)
  z = D.imresize(x.astype(np.float32), output_shape=(100, 37))
  assert z.shape == (100, 37, 3) and z.dtype == np.float32
  assert D.imresize(x[..., 0], 0.5).shape == (256, 256)


def test_identity_scale_is_exact():
  x = photo('rocket')[:50, :60]
  np.testing.assert_array_equal(D.imresize(x, 1), x)


def test_contribution_weights_sum_to_one_and_stay_inside():
  for n, out, s in ((512, 256, 0.5), (300, 100, 1 / 3), (64, 4, 1 / 16), (48, 192, 4.0)):
    w, idx = D.contributions(n, out, s)
    np.testing.assert_allclose(w.sum(axis=1), 1, atol=1e-12)
    assert idx.min() >= 0 and idx.max() < n
    assert np.any(w != 0, axis=0).all()  # all-zero columns are dropped


# ---------------------------------------------------------------------------------------------
# JAX versions.


@pytest.mark.parametrize('scale', (1 / 2, 1 / 3, 1 / 4, 1 / 8, 1 / 16, 4))
def test_imresize_jax_matches_numpy(scale):
  x = photo('coffee')[:192, :288].astype(np.float32)  # 0..255
  ref = D.imresize(x.astype(np.float64), scale)
  fn = jax.jit(lambda v: D.imresize_jax(v, scale))
  out = np.asarray(fn(jnp.asarray(np.stack([x, x[::-1]]))))  # [2, h, w, 3]
  assert out.shape == (2,) + ref.shape and out.dtype == np.float32
  assert np.abs(out[0] - ref).max() < 1e-4
  assert np.abs(out[1] - D.imresize(x[::-1].astype(np.float64), scale)).max() < 1e-4


def test_jax_image_resize_differs_only_at_borders():
  """jax.image.resize renormalises over the in-image taps at the border instead of mirroring, so
  it only matches MATLAB in the interior: that is why `imresize_jax` exists."""
  x = photo('astronaut').astype(np.float64) / 255  # [512, 512, 3] in [0, 1]
  for scale, src, margin in ((1 / 2, x, 2), (1 / 4, x, 2), (4, x[:128, :128], 10)):
    ours = D.imresize(src, scale)
    theirs = np.asarray(jax.image.resize(jnp.asarray(src, jnp.float32), ours.shape, 'bicubic',
                                         antialias=True), np.float64)
    diff = np.abs(ours - theirs).max(axis=-1)  # [h, w]
    assert diff[margin:-margin, margin:-margin].max() < 1e-3, scale
    border = max(diff[0].max(), diff[-1].max(), diff[:, 0].max(), diff[:, -1].max())
    assert border > 1e-3, scale


# ---------------------------------------------------------------------------------------------
# Gaussian blur + subsampling.


def test_gaussian_kernel():
  for sigma in (0.5, 1.0, 1.6, 3.0):
    g = D.gaussian_kernel(sigma)
    assert g.size == 2 * math.ceil(3 * sigma) + 1
    assert abs(g.sum() - 1) < 1e-12
    np.testing.assert_allclose(g, g[::-1])
    assert g.argmax() == g.size // 2
  assert D.gaussian_kernel(1.0, ksize=5).size == 5
  with pytest.raises(ValueError):
    D.gaussian_kernel(1.0, ksize=4)
  with pytest.raises(ValueError):
    D.gaussian_kernel(0.0)


def test_gaussian_constant_and_shape():
  c = np.full((37, 50, 3), 91, np.uint8)
  for scale in (2, 3, 4):
    out = D.gaussian_blur_downsample(c, scale, 1.2)
    assert out.shape == (37 // scale, 50 // scale, 3) and out.dtype == np.uint8
    assert np.all(out == 91)
  x = photo('chelsea')
  assert D.degrade(x, 4, 'gaussian', sigma=1.6).shape == (75, 112, 3)


def test_gaussian_matches_direct_definition():
  """Symmetric padding, 2-D convolution, keep pixel (scale - 1) // 2 + k * scale."""
  x = photo('rocket')[:45, :60].astype(np.float64)
  for scale, sigma, ksize in ((3, 1.0, None), (4, 1.6, None), (2, 0.8, 9)):
    g = D.gaussian_kernel(sigma, ksize)
    r = g.size // 2
    k2 = np.outer(g, g)  # [K, K]
    pad = np.pad(x, ((r, r), (r, r), (0, 0)), mode='symmetric')
    blurred = np.zeros_like(x)
    for dy in range(g.size):
      for dx in range(g.size):
        blurred += k2[dy, dx] * pad[dy:dy + x.shape[0], dx:dx + x.shape[1]]
    off = (scale - 1) // 2
    ref = blurred[off::scale, off::scale][:x.shape[0] // scale, :x.shape[1] // scale]
    np.testing.assert_allclose(D.gaussian_blur_downsample(x, scale, sigma, ksize), ref, atol=1e-9)


def test_gaussian_jax_matches_numpy():
  x = photo('astronaut')[:200, :160].astype(np.float32)
  for scale, sigma in ((2, 0.8), (4, 1.6), (3, 1.2)):
    ref = D.gaussian_blur_downsample(x.astype(np.float64), scale, sigma)
    out = np.asarray(jax.jit(lambda v: D.gaussian_blur_downsample_jax(v, scale, sigma))(
        jnp.asarray(x[None])))[0]
    assert out.shape == ref.shape == (200 // scale, 160 // scale, 3)
    assert np.abs(out - ref).max() < 1e-4


# ---------------------------------------------------------------------------------------------
# modcrop / degrade.


def test_modcrop():
  x = np.zeros((301, 451, 3), np.uint8)
  assert D.modcrop(x, 4).shape == (300, 448, 3)
  assert D.modcrop(x, 3).shape == (300, 450, 3)
  assert D.modcrop(x, 1).shape == x.shape
  y = np.arange(7 * 9).reshape(7, 9)
  np.testing.assert_array_equal(D.modcrop(y, 2), y[:6, :8])  # top-left anchored


def test_degrade_errors():
  with pytest.raises(ValueError, match='smaller than the scale'):
    D.degrade(np.zeros((3, 40, 3), np.uint8), 4)
  with pytest.raises(ValueError, match='smaller than the scale'):
    D.degrade(np.zeros((40, 2, 3), np.uint8), 4, 'gaussian', sigma=1.0)
  with pytest.raises(ValueError, match='sigma'):
    D.degrade(np.zeros((40, 40, 3), np.uint8), 4, 'gaussian')
  with pytest.raises(ValueError, match='kind'):
    D.degrade(np.zeros((40, 40, 3), np.uint8), 4, 'box')
  with pytest.raises(ValueError, match='scale'):
    D.degrade(np.zeros((40, 40, 3), np.uint8), 2.5)
