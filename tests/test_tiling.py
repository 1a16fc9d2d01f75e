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
