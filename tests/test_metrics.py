"""SR metrics against independent references (scikit-image) on real photographs."""
from __future__ import annotations

import math

import numpy as np
import pytest
import skimage.data
from scipy.ndimage import gaussian_filter
from skimage.color import rgb2ycbcr
from skimage.metrics import peak_signal_noise_ratio as sk_psnr
from skimage.metrics import structural_similarity as sk_ssim

from vdvae_jax.evaluate import metrics

IMAGES = ("astronaut", "coffee", "chelsea")  # shipped in the scikit-image wheel, no download
TOL = 1e-4  # agreement asked for; measured: <= 7.2e-15 (PSNR), <= 5.6e-16 (SSIM mean)


def _hr(name: str) -> np.ndarray:
  return getattr(skimage.data, name)()  # [H, W, 3] uint8


def _noisy(hr: np.ndarray, sigma: float = 5.0, seed: int = 0) -> np.ndarray:
  rng = np.random.default_rng(seed)
  return np.clip(np.rint(hr + rng.normal(0.0, sigma, hr.shape)), 0, 255).astype(np.uint8)


def _blurred(hr: np.ndarray) -> np.ndarray:
  out = gaussian_filter(hr.astype(np.float64), sigma=(1.0, 1.0, 0.0))
  return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _ref_y(img: np.ndarray, border: int) -> np.ndarray:
  """Reference Y: skimage's rgb2ycbcr (MATLAB convention), cropped."""
  return rgb2ycbcr(img)[border:-border, border:-border, 0]  # [h, w] float64 in [16, 235]


@pytest.mark.parametrize("name", IMAGES)
def test_rgb_to_y_matches_skimage(name):
  hr = _hr(name)
  y = metrics.rgb_to_y(hr)
  assert y.dtype == np.float64 and y.shape == hr.shape[:2]
  np.testing.assert_allclose(y, rgb2ycbcr(hr)[..., 0], rtol=0, atol=1e-10)
  assert 16.0 <= y.min() and y.max() <= 235.0


@pytest.mark.parametrize("name", IMAGES)
@pytest.mark.parametrize("degrade", [_noisy, _blurred], ids=["noise5", "blur1"])
@pytest.mark.parametrize("scale", [2, 4])
def test_psnr_ssim_y_match_skimage(name, degrade, scale):
  hr = _hr(name)
  sr = degrade(hr)
  ys, yh = _ref_y(sr, scale), _ref_y(hr, scale)

  ref_psnr = sk_psnr(yh, ys, data_range=255)
  assert abs(metrics.psnr_y(sr, hr, scale) - ref_psnr) < TOL

  # skimage filters with mode='reflect' over the whole image, then averages the map after cropping
  # (win_size - 1) // 2 = 5 pixels per side (truncate 3.5 * sigma 1.5 -> 11 taps): exactly the
  # region where the window never leaves the image, i.e. MATLAB's filter2(..., 'valid') map. So its
  # mean is the 'valid' mean; the cropped full map is checked too so that this stays true.
  ref_ssim, ref_map = sk_ssim(
    yh, ys, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255, full=True)
  ref_valid = float(ref_map[5:-5, 5:-5].mean())
  ours = metrics.ssim_y(sr, hr, scale)
  assert abs(ours - ref_ssim) < TOL
  assert abs(ours - ref_valid) < TOL
  ours_map = metrics.ssim_map(yh, ys)
  assert ours_map.shape == (yh.shape[0] - 10, yh.shape[1] - 10)
  np.testing.assert_allclose(ours_map, ref_map[5:-5, 5:-5], rtol=0, atol=1e-10)


def test_psnr_rgb_matches_skimage():
  hr = _hr("coffee")
  sr = _noisy(hr)
  ref = sk_psnr(hr[3:-3, 3:-3], sr[3:-3, 3:-3], data_range=255)
  assert abs(metrics.psnr_rgb(sr, hr, 3) - ref) < TOL


def test_dm_pix_ssim_agrees():
  """dm_pix.ssim is the same convention ('valid', 11/1.5, K1/K2); numpy float64 is the one used."""
  pytest.importorskip("dm_pix")
  import dm_pix
  import jax
  import jax.numpy as jnp

  hr = _hr("chelsea")
  sr = _noisy(hr)
  ys, yh = _ref_y(sr, 4), _ref_y(hr, 4)
  ours = metrics.ssim_y(sr, hr, 4)
  got32 = float(dm_pix.ssim(jnp.asarray(yh[..., None], jnp.float32), jnp.asarray(ys[..., None], jnp.float32),
                            max_val=255.0))
  assert abs(got32 - ours) < 1e-5  # float32 rounding: measured ~1e-6
  if hasattr(jax, "enable_x64"):
    with jax.enable_x64(True):
      got64 = float(dm_pix.ssim(jnp.asarray(yh[..., None]), jnp.asarray(ys[..., None]), max_val=255.0))
    assert abs(got64 - ours) < 1e-10  # measured ~5e-15


@pytest.mark.parametrize("name", IMAGES)
def test_full_range_luma_offset(name):
  """Full-range luma instead of studio-range Y shifts PSNR by the constant 20 log10(255 / 219)."""
  hr = _hr(name)
  sr = _noisy(hr)
  s = 4
  w = np.array([0.299, 0.587, 0.114])
  full = lambda x: x[s:-s, s:-s].astype(np.float64) @ w  # [h, w], range 0..255
  delta = metrics.psnr_y(sr, hr, s) - metrics.psnr(full(sr), full(hr), 255)
  # Studio weights are 219 * (0.299, 0.587, 0.114) / 255 (65.481 + 128.553 + 24.966 = 219), so
  # Y_studio = 16 + (219 / 255) Y_full: the offset cancels in the difference, every error shrinks by
  # 219/255, the MSE by (219/255)^2, and with the same peak 255 the PSNR rises by 20 log10(255/219)
  # = +1.3219 dB on every pair, i.e. psnr_y - psnr_full = -20 log10(219/255).
  assert abs(delta - 20 * math.log10(255 / 219)) < 1e-9  # exact up to rounding (~1e-15)
  assert abs(delta - 1.3219) < 1e-3


def test_identical_images():
  hr = _hr("astronaut")
  assert metrics.psnr_y(hr, hr, 4) == math.inf
  assert metrics.psnr_rgb(hr, hr, 4) == math.inf
  assert metrics.psnr(hr, hr) == math.inf
  assert abs(metrics.ssim_y(hr, hr, 4) - 1.0) < 1e-12


def test_known_mse_exact():
  """+-d on every pixel (same sign on R, G, B): MSE_RGB = d^2 and MSE_Y = (219 d / 255)^2 exactly."""
  hr = np.clip(_hr("chelsea"), 10, 245)
  d = 3
  sign = np.random.default_rng(1).choice([-1, 1], size=hr.shape[:2])[..., None]  # [H, W, 1]
  sr = (hr.astype(np.int16) + d * sign).astype(np.uint8)
  assert abs(metrics.psnr_rgb(sr, hr, 2) - 10 * math.log10(255 ** 2 / d ** 2)) < 1e-9
  assert abs(metrics.psnr_y(sr, hr, 2) - 20 * math.log10(255 / (219 * d / 255))) < 1e-9


def test_uniform_noise_expected_psnr():
  """Integer noise uniform on {-k..k}: E[e^2] = k (k + 1) / 3, so PSNR ~ 10 log10(3 * 255^2 / (k (k + 1)))."""
  hr = np.clip(_hr("astronaut"), 10, 245)
  k = 4
  noise = np.random.default_rng(2).integers(-k, k + 1, size=hr.shape)
  sr = (hr.astype(np.int16) + noise).astype(np.uint8)
  expected = 10 * math.log10(3 * 255 ** 2 / (k * (k + 1)))
  assert abs(metrics.psnr_rgb(sr, hr, 2) - expected) < 0.03  # sampling std ~0.004 dB


def test_float_sr_is_rounded_to_uint8():
  hr = _hr("coffee")
  sr = _noisy(hr)
  base_p, base_s = metrics.psnr_y(sr, hr, 3), metrics.ssim_y(sr, hr, 3)
  for shift in (0.4, -0.4):
    f = sr.astype(np.float64) + shift
    assert metrics.psnr_y(f, hr, 3) == base_p
    assert metrics.ssim_y(f, hr, 3) == base_s
    assert metrics.psnr_rgb(f.astype(np.float32), hr, 3) == metrics.psnr_rgb(sr, hr, 3)
  # Clipping and half-up rounding (MATLAB uint8()).
  q = metrics.to_uint8(np.array([-7.0, 0.49, 0.5, 1.5, 254.5, 300.0]))
  np.testing.assert_array_equal(q, [0, 0, 1, 2, 255, 255])


def test_bad_inputs():
  hr = _hr("chelsea")  # [300, 451, 3]
  with pytest.raises(ValueError, match=r"\(300, 450, 3\).*\(300, 451, 3\)"):
    metrics.psnr_y(hr[:, :450], hr, 2)
  with pytest.raises(ValueError, match="RGB"):
    metrics.psnr_y(np.zeros((32, 32, 4), np.uint8), np.zeros((32, 32, 4), np.uint8), 2)
  with pytest.raises(ValueError):
    metrics.ssim_y(hr[..., 0], hr[..., 0], 2)
  with pytest.raises(ValueError, match="border"):
    metrics.psnr_y(hr, hr, 150)
  with pytest.raises(ValueError, match="at least 11x11"):
    metrics.ssim_y(hr[:30, :30], hr[:30, :30], 10)
  with pytest.raises(TypeError, match="hr"):
    metrics.psnr_y(hr, hr.astype(np.float64), 2)
  with pytest.raises(TypeError, match="sr"):
    metrics.psnr_y(hr.astype(np.int32), hr, 2)
  with pytest.raises(ValueError, match="NaN"):
    metrics.psnr_y(np.full(hr.shape, np.nan), hr, 2)
  with pytest.raises(ValueError):
    metrics.psnr(np.zeros((4, 4)), np.zeros((4, 5)))


def _box_down2(img: np.ndarray) -> np.ndarray:
  """Stand-in degradation: 2x2 box average, float output [H/2, W/2, 3]."""
  x = img.astype(np.float64)
  return 0.25 * (x[0::2, 0::2] + x[1::2, 0::2] + x[0::2, 1::2] + x[1::2, 1::2])


def test_lr_consistency_psnr():
  hr = _hr("astronaut")
  lr = metrics.to_uint8(_box_down2(hr))
  assert metrics.lr_consistency_psnr(hr, lr, _box_down2) == math.inf
  sr = _noisy(hr, sigma=10.0)
  got = metrics.lr_consistency_psnr(sr, lr, _box_down2)
  assert abs(got - sk_psnr(lr, metrics.to_uint8(_box_down2(sr)), data_range=255)) < 1e-12
  # A degradation returning uint8 is accepted as is.
  assert metrics.lr_consistency_psnr(sr, lr, lambda x: metrics.to_uint8(_box_down2(x))) == got
  with pytest.raises(ValueError, match="degrade"):
    metrics.lr_consistency_psnr(sr, lr[:-1], _box_down2)


def test_pixel_std():
  hr = np.clip(_hr("coffee")[:64, :80], 0, 240)
  offsets = np.array([0, 2, 4, 6], np.uint8)[:, None, None, None]
  samples = hr[None] + offsets  # [4, 64, 80, 3], std over N = sqrt(5) everywhere
  std_map, mean = metrics.pixel_std(samples)
  assert std_map.shape == (64, 80)
  np.testing.assert_allclose(std_map, math.sqrt(5.0), rtol=1e-12)
  assert abs(mean - math.sqrt(5.0)) < 1e-12
  noisy = np.stack([_noisy(hr, seed=i) for i in range(3)])
  ref = noisy.astype(np.float64).std(axis=0).mean(axis=-1)
  np.testing.assert_allclose(metrics.pixel_std(noisy)[0], ref, rtol=1e-12)
  with pytest.raises(ValueError):
    metrics.pixel_std(samples[:1])
  with pytest.raises(ValueError):
    metrics.pixel_std(samples[..., :2])


def test_mean_pairwise():
  samples = np.stack([np.full((8, 8, 3), v, np.uint8) for v in (0, 1, 2)])
  l2 = lambda a, b: float(np.mean((a.astype(np.float64) - b) ** 2))
  assert metrics.mean_pairwise(l2, samples) == pytest.approx((1 + 4 + 1) / 3)
  hr = _hr("chelsea")[:64, :64]
  noisy = np.stack([_noisy(hr, seed=i) for i in range(4)])
  pairs = [metrics.psnr(noisy[i], noisy[j]) for i in range(4) for j in range(i + 1, 4)]
  assert len(pairs) == 6
  assert metrics.mean_pairwise(metrics.psnr, noisy) == pytest.approx(np.mean(pairs), abs=1e-12)
  with pytest.raises(ValueError):
    metrics.mean_pairwise(l2, samples[:1])
