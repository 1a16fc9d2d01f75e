"""SR that works: on the committed demo VDVAE (pretrained/demo), a briefly trained SR model
super-resolves held-out patches (skimage's chelsea, never trained on) better than
nearest-neighbour upsampling, in PSNR to the HR patch and in LR-consistency. A broken method,
pixel rule or pretrained model (today's state before issue 16: 19.5 dB) fails here."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import reference_sets as ref
from vdvae_jax.data.degradations import imresize
from vdvae_jax.data.demo import demo_source
from vdvae_jax.train.config import load_config_file

N_PATCHES = 48


def psnr(a, b):
  mse = np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2)
  return 10 * np.log10(255.0 ** 2 / mse)


def held_out_patches(scale):
  hr = np.stack(list(demo_source('valid', patch_size=32)))            # [126, 32, 32, 3]
  hr = hr[np.random.RandomState(0).permutation(len(hr))[:N_PATCHES]]
  lr = np.stack([imresize(x, scale=1 / scale) for x in hr])
  return hr, lr


def down(images, scale):
  return np.stack([imresize(np.asarray(x, np.float64), scale=1 / scale) for x in images])


@pytest.mark.slow
@pytest.mark.parametrize('method', ['diverse', 'vdvae_sr'])
def test_trained_sr_beats_nearest_neighbour_on_held_out_patches(method, tmp_path):
  from vdvae_jax.sr import api as sr_api
  from vdvae_jax.sr.io import load_model
  from vdvae_jax.train import train_and_evaluate
  c = load_config_file(str(ref.REPO / 'configs' / 'demo_sr.py'),
                       'vdvae_sr' if method == 'vdvae_sr' else None)
  c.train.update(dict(steps=STEPS[method], checkpoint_every=STEPS[method], eval_every=10**6,
                      sample_every=10**6, progress_bar=False))
  train_and_evaluate(c, str(tmp_path))
  params, hps, sr = load_model(str(tmp_path / 'pretrained'))
  hr, lr = held_out_patches(sr.scale)
  out = sr_api.super_resolve(params, hps, sr, jnp.asarray(lr), temperature=0.1, pixels='mean',
                             rng=jax.random.key(0))
  sr_img = np.asarray(out.image[:, 0])
  nearest = np.repeat(np.repeat(lr, sr.scale, 1), sr.scale, 2)
  p_sr, p_nn = psnr(sr_img, hr), psnr(nearest, hr)
  lr_sr, lr_nn = psnr(down(sr_img, sr.scale), lr), psnr(down(nearest, sr.scale), lr)
  print(f'{method}: PSNR {p_sr:.2f} vs nearest {p_nn:.2f}; LR-PSNR {lr_sr:.2f} vs {lr_nn:.2f}')
  assert p_sr > p_nn
  assert lr_sr > lr_nn


STEPS = {'diverse': 200, 'vdvae_sr': 100}
