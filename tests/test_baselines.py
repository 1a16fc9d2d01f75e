"""The course-report baselines (SRCNN, plain CVAE) train on the demo data and are scored by
eval.py in the same table as bicubic."""
import json
import types

import numpy as np
import pytest

import reference_sets as ref
from vdvae_jax.train.config import load_config_file
from vdvae_jax.evaluate.run import run_eval
from vdvae_jax.train import train_and_evaluate


def load_config(name, arg='tiny'):
  return load_config_file(str(ref.REPO / 'configs' / f'{name}.py'), arg)


@pytest.mark.parametrize('name', ['cifar10_x4_srcnn', 'cifar10_x4_cvae'])
def test_baseline_trains_and_evaluates(name, tmp_path):
  c = load_config(name)
  c.train.update(dict(steps=40, log_every=10, eval_every=1000, sample_every=40,
                      checkpoint_every=40, batch_size=8))
  train_and_evaluate(c, str(tmp_path))
  logged = [json.loads(l) for l in open(tmp_path / 'metrics.jsonl')]
  mse = [r['train/mse'] for r in logged if 'train/mse' in r]
  assert mse[-1] < mse[0], mse
  o = types.SimpleNamespace(workdir=str(tmp_path), checkpoint=None, hr_dir=None, sr_dir=None,
                            scale=None, degradation='bicubic', sigma=None, input_dir=None,
                            output_dir=None, temperatures=['1.0'], n_samples=2, eval_batches=0,
                            lpips=False, seed=0, pixels='mean', projection=False,
                            diagnose=False, psi_temperature=None)
  run_eval(o)
  res = json.loads((tmp_path / 'eval' / 'results.json').read_text())
  assert set(res['mean']) == {'bicubic', 't=1.0'}
  for k in ('psnr_y', 'ssim_y', 'lr_psnr'):
    assert np.isfinite(res['mean']['t=1.0'][k])
  if name.endswith('srcnn'):           # deterministic: no diversity
    assert res['mean']['t=1.0']['pixel_std'] == 0.0
