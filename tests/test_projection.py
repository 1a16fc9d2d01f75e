"""LR-consistency back-projection: it makes any x4 upsampling agree with its LR input to the NTIRE
criterion (>= 45 dB) without moving away from the HR image, for both degradations."""
import numpy as np
import pytest

from vdvae_jax.data.degradations import degrade, imresize, modcrop
from vdvae_jax.data.demo import held_out_sets
from vdvae_jax.data.images import load_image
from vdvae_jax.evaluate import metrics
from vdvae_jax.sr.projection import back_project


@pytest.mark.parametrize('kind,sigma', [('bicubic', None), ('gaussian', 1.5)])
def test_back_projection_reaches_lr_consistency(kind, sigma):
  hr = modcrop(load_image(held_out_sets()['demo held-out (skimage chelsea)'][0])[:96, :128], 4)
  down = lambda im: degrade(im, 4, kind, sigma)  # noqa: E731
  lr = down(hr)
  nearest = np.repeat(np.repeat(lr, 4, 0), 4, 1)
  before = metrics.lr_consistency_psnr(nearest, lr, down)
  x = np.round(back_project(nearest, lr, 4, down)).astype(np.uint8)
  after = metrics.lr_consistency_psnr(x, lr, down)
  assert before < 45 <= after, (before, after)
  assert metrics.psnr_y(x, hr, 4) >= metrics.psnr_y(nearest, hr, 4) - 0.1


def test_back_projection_checks_sizes():
  with pytest.raises(ValueError, match=r'SR \(30, 32\) is not x4 of LR \(8, 8\)'):
    back_project(np.zeros((30, 32, 3)), np.zeros((8, 8, 3)), 4, lambda x: imresize(x, scale=0.25))
