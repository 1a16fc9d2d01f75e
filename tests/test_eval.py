"""eval.py: metrics-only scoring with known answers, clear errors, and the full evaluation of
tiny trained models (SR and unconditional) on the demo data."""
import json
import math
import subprocess
import sys
import types

import numpy as np
import pytest
from skimage import data

import reference_sets as ref
from vdvae_jax.train.config import ConfigError, load_config_file
from vdvae_jax.data.images import ImageError, save_image
from vdvae_jax.evaluate.run import run_eval


def options(**kw):
  base = dict(workdir=None, checkpoint=None, hr_dir=None, sr_dir=None, scale=None,
              degradation='bicubic', sigma=None, input_dir=None, output_dir=None,
              temperatures=[], n_samples=2, eval_batches=0, lpips=True, seed=0, pixels='mean',
              projection=False, diagnose=False, base_checkpoint=None,
              psi_temperature=None)
  base.update(kw)
  return types.SimpleNamespace(**base)


def folders(tmp_path, offset=0):
  hr, sr = tmp_path / 'hr', tmp_path / 'sr'
  for name, img in [('coffee', data.coffee()[:120, :160]), ('astro', data.astronaut()[:96, :96])]:
    save_image(hr / f'{name}.png', img)
    save_image(sr / f'{name}.png', np.clip(img.astype(int) + offset, 0, 255).astype(np.uint8))
  return hr, sr


def test_metrics_only_identical_images(tmp_path):
  hr, sr = folders(tmp_path)
  r = subprocess.run([sys.executable, str(ref.REPO / 'eval.py'), f'--hr_dir={hr}', f'--sr_dir={sr}',
                      '--scale=4', f'--output_dir={tmp_path / "out"}'], capture_output=True,
                     text=True, cwd=ref.REPO, timeout=300)
  assert r.returncode == 0, r.stderr[-2000:]
  res = json.loads((tmp_path / 'out' / 'results.json').read_text())
  m = res['mean']['sr']
  assert m['psnr_y'] == 'inf' and m['ssim_y'] == 1.0 and abs(m['lpips']) < 1e-6
  assert '| sr |' in (tmp_path / 'out' / 'results.md').read_text()


def test_metrics_only_known_noise_level(tmp_path):
  """SR = HR + 2 on every sub-pixel (no clipping in these crops): PSNR-Y is 20 log10(255 / (2 *
  219/255)) exactly (studio-range Y scales a uniform offset by 219/255)."""
  hr, sr = folders(tmp_path, offset=2)
  from skimage import io
  for p in (hr / 'coffee.png', hr / 'astro.png'):
    assert io.imread(p).max() <= 253
  res = run_eval(options(hr_dir=str(hr), sr_dir=str(sr), scale=4, lpips=False,
                         output_dir=str(tmp_path / 'o')))
  out = json.loads((tmp_path / 'o' / 'results.json').read_text())['mean']['sr']
  assert abs(out['psnr_y'] - 20 * math.log10(255 / (2 * 219 / 255))) < 1e-4
  assert 'psnr_y' in res


def test_metrics_only_bad_input(tmp_path):
  hr, sr = folders(tmp_path)
  (sr / 'astro.png').rename(sr / 'astronaut.png')
  with pytest.raises(ImageError, match=r"no SR image for \['astro'\]"):
    run_eval(options(hr_dir=str(hr), sr_dir=str(sr), scale=4, lpips=False))
  (sr / 'astronaut.png').rename(sr / 'astro.png')
  save_image(sr / 'coffee.png', data.coffee()[:30, :40])          # an x4 LR image, not SR
  with pytest.raises(ImageError, match=r'coffee.png: size 40x30 does not match.*scale right'):
    run_eval(options(hr_dir=str(hr), sr_dir=str(sr), scale=4, lpips=False))
  (sr / 'coffee.png').write_bytes(b'\x89PNG\r\n\x1a\n' + b'garbage' * 10)
  with pytest.raises(ImageError, match='coffee.png'):
    run_eval(options(hr_dir=str(hr), sr_dir=str(sr), scale=4, lpips=False))


def load_config(name, arg='tiny'):
  return load_config_file(str(ref.REPO / 'configs' / f'{name}.py'), arg)


@pytest.mark.slow(seconds=100)
def test_eval_end_to_end_on_tiny_models(tmp_path):
  from vdvae_jax.train import train_and_evaluate
  # Unconditional: ELBO, per-block KL, active groups, sample grid.
  c = load_config('demo')
  train_and_evaluate(c, str(tmp_path / 'vdvae'))
  table = run_eval(options(workdir=str(tmp_path / 'vdvae'), eval_batches=1))
  res = json.loads((tmp_path / 'vdvae' / 'eval' / 'results.json').read_text())
  m = res['mean']['vdvae']
  assert m['bits_per_dim'] > 0
  assert abs(m['bits_per_dim'] * math.log(2) / m['elbo_nats_per_dim'] - 1) < 1e-6   # float32
  assert m['groups'] == len(res['kl_per_block']) and 0 <= m['active_groups'] <= m['groups']
  assert (tmp_path / 'vdvae' / 'eval' / 'samples.png').stat().st_size > 0
  assert res['temperatures'] == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
  assert 'bits_per_dim' in table
  # SR (diverse, tiny) on the demo held-out photograph, with tiling over the whole image.
  c = load_config('ffhq_x8')
  c.init_from = str(tmp_path / 'vdvae' / 'pretrained')
  c.model.dataset = 'cifar10'
  c.train.update(dict(steps=4, sample_every=1000))
  train_and_evaluate(c, str(tmp_path / 'sr'))
  table = run_eval(options(workdir=str(tmp_path / 'sr'), temperatures=['0.5'], n_samples=2))
  res = json.loads((tmp_path / 'sr' / 'eval' / 'results.json').read_text())
  assert set(res['mean']) == {'bicubic', 't=0.5'}
  for k in ('psnr_y', 'ssim_y', 'lr_psnr', 'lpips', 'diversity_lpips', 'pixel_std'):
    assert np.isfinite(res['mean']['t=0.5'][k]), k
  assert res['mean']['bicubic']['psnr_y'] > 20
  grids = list((tmp_path / 'sr' / 'eval' / 'grids').iterdir())
  assert grids and grids[0].stat().st_size > 0
  assert '| t=0.5 |' in table
  # The user's own LR images.
  lr_dir = tmp_path / 'mine'
  save_image(lr_dir / 'a.png', data.coffee()[:20, :28])
  msg = run_eval(options(workdir=str(tmp_path / 'sr'), input_dir=str(lr_dir),
                         output_dir=str(tmp_path / 'mine_sr'), n_samples=2))
  from vdvae_jax.data.images import load_image
  assert load_image(tmp_path / 'mine_sr' / 'a_s1.png').shape == (80, 112, 3)
  assert 'wrote 2 images' in msg
  # Bad input: an LR image smaller than one patch, a scale the model was not trained for.
  save_image(tmp_path / 'small' / 'tiny.png', data.coffee()[:5, :7])
  with pytest.raises(ImageError, match=r'tiny.png: LR image 7x5 is smaller than one patch of '
                                       r'this model \(8x8 LR pixels at x4'):
    run_eval(options(workdir=str(tmp_path / 'sr'), input_dir=str(tmp_path / 'small'),
                     output_dir=str(tmp_path / 'small_sr')))
  assert not (tmp_path / 'small_sr').exists()
  with pytest.raises(ConfigError, match=r'--scale=8: .* was trained for x4 \(8x8 -> 32x32\)'):
    run_eval(options(workdir=str(tmp_path / 'sr'), scale=8))
