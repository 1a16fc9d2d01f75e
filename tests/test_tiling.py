"""Tiled super-resolution covers every pixel and blends consistently."""
import numpy as np
import pytest

from vdvae_jax.sr.tiling import blend_window, super_resolve_tiled, tile_starts


@pytest.mark.parametrize('length,patch,overlap', [(16, 16, 4), (37, 16, 4), (100, 16, 0), (5, 8, 2)])
def test_tile_starts_cover(length, patch, overlap):
  starts = tile_starts(length, patch, overlap)
  covered = np.zeros(max(length, patch), bool)
  for s in starts:
    covered[s:s + patch] = True
  assert covered[:length].all() and starts[0] == 0
  assert all(b - a <= patch - overlap for a, b in zip(starts, starts[1:]))


def test_nearest_upsampling_through_tiles_is_exact():
  """A patch 'model' that upsamples by pixel repetition gives, after blending, exactly the
  pixel-repeated whole image (any blend of identical values is that value); odd sizes and an
  image smaller than the patch included."""
  rs = np.random.RandomState(0)
  for h, w in [(37, 23), (5, 7), (16, 16)]:
    lr = rs.randint(0, 256, (h, w, 3)).astype(np.uint8)
    fn = lambda t: np.repeat(np.repeat(t, 4, 1), 4, 2)[:, None].astype(np.float64)  # noqa: E731
    hr = super_resolve_tiled(lr, 4, 8, 2, fn, batch_size=3)
    np.testing.assert_allclose(hr[0], np.repeat(np.repeat(lr, 4, 0), 4, 1), atol=1e-9)


def test_blend_window_positive():
  w = blend_window(16, 4)
  assert w.min() > 0 and w.max() == 1.0 and w[8, 8] == 1.0


def test_sr_sampler_reports_non_finite_model_output(monkeypatch, capsys):
  """A model fault (NaN pixels) is said on stderr and written as 0, not cast to arbitrary uint8."""
  import types
  from tiny import TINY
  from vdvae_jax.evaluate.runner import sr_sampler
  from vdvae_jax.sr import api as sr_api
  from vdvae_jax.sr.settings import SRSettings

  def fake(params, hps, sr, tiles, n_samples, **kw):   # [b, N, 16, 16, 3] in [-1, 1]
    x = np.zeros((tiles.shape[0], n_samples, 16, 16, 3))
    x[0, :, 3, 5] = np.nan
    image = np.full(x.shape, 200, np.uint8)             # what a uint8 cast of NaN may give
    return types.SimpleNamespace(x=x, image=image)
  monkeypatch.setattr(sr_api, 'super_resolve', fake)
  sr = SRSettings(method='diverse', scale=4, lr_enc_blocks='4x1,4d4,1x1', ky=1)
  for pixels, elsewhere in (('mean', 128), ('sample', 200)):
    run = sr_sampler(None, TINY, sr, n_samples=2, temperature=0.8, seed=0, overlap=0,
                     pixels=pixels)
    out = run(np.zeros((4, 4, 3), np.uint8))               # one tile
    assert out.shape == (2, 16, 16, 3) and out.dtype == np.uint8
    assert (out[:, 3, 5] == 0).all() and (out[:, 3, 4] == elsewhere).all(), pixels
    assert 'the SR model gave 2 non-finite (NaN/Inf) pixels at t = 0.8' in capsys.readouterr().err
