"""convert_torch_weights.py: round trip of the golden models, every official manifest, strict
accounting with useful errors, refusal of non-checkpoints, architecture inference."""
import json
import os
import pickle
import re
import subprocess
import sys

import numpy as np
import pytest
import torch

import reference_sets as ref
from tiny import TINY
from vdvae_jax.convert.convert import convert
from vdvae_jax.convert.state_dict import StateDictMismatch, check_state_dict, state_dict_entries
from vdvae_jax.convert.torch_checkpoint import ConversionError, mismatch_hint
from vdvae_jax.hparams import PRESETS, get_preset
from vdvae_jax.model import api
from vdvae_jax.model.checkpoint import load_pretrained

REPO = ref.REPO


def run_cli(*args):
  return subprocess.run([sys.executable, str(REPO / 'convert_torch_weights.py'), *args],
                        capture_output=True, text=True, cwd=REPO, timeout=600)


def leftovers(folder):
  """Anything the converter may have left behind in `folder` (outputs or temporaries)."""
  return sorted(os.listdir(folder))


@pytest.mark.reference
@pytest.mark.parametrize('v', ref.variants())
def test_golden_model_round_trip_through_cli(v, tmp_path):
  out = tmp_path / 'converted'
  r = run_cli('--torch_checkpoint', str(ref.path('model', v)).replace('.npz', '.th'),
              '--hparams', str(ref.path('hparams', v)), '--output', str(out))
  assert r.returncode == 0, r.stderr
  assert 'reload verified' in r.stdout and 'bits/dim' in r.stdout
  params, hps = load_pretrained(str(out))
  assert hps == ref.hparams(v)
  # Bit-identical to the official tensors, so the full parity suite applies; re-check its core.
  import jax
  for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(ref.params(v))):
    np.testing.assert_array_equal(a, b)
  g = ref.golden(v)
  out_ = api.elbo(params, hps, g['x_input'], g['x_target'], posterior='mean')
  np.testing.assert_allclose(out_.elbo, g['elbo_per_image'], rtol=1e-5)
  assert np.max(np.abs(out_.px_z - ref.nhwc(g['px_z']))) <= 1e-4
  eps = ref.per_block(g, 'prior_eps_', hps.n_dec_blocks)
  px = api.decode(params, hps, n=eps[0].shape[0], temperature=float(g['prior_temperature']),
                  eps=eps)
  assert np.max(np.abs(px - ref.nhwc(g['px_z_prior']))) <= 1e-4


def manifest_state_dict(name, seed=0):
  p = ref.REFERENCE_DIR / f'manifest_{name}.json'
  if not p.exists():
    pytest.skip(f'{p} not found')
  with open(p) as f:
    m = json.load(f)
  gen = torch.Generator().manual_seed(seed)
  return {k: torch.randn(*s, generator=gen) * 0.01 for k, s, _ in m['state_dict']}


# Files of full-size checkpoints for two presets (each takes ~10-20 s of saving and reloading);
# every preset's key and shape accounting is checked without files below and in test_presets.
@pytest.mark.parametrize('name', ['cifar10', 'ffhq256'])
def test_manifest_state_dicts_convert_and_fail_cleanly(name, tmp_path):
  sd = manifest_state_dict(name)
  hps = get_preset(name)
  src = tmp_path / 'ckpt.th'
  # -model-ema.th style (no prefix) and -model.th style (DDP 'module.' prefix).
  for prefix in ('', 'module.'):
    torch.save({prefix + k: v for k, v in sd.items()}, src)
    out = tmp_path / f'out{prefix or "-ema"}'
    rep = convert(str(src), str(out), hps, evaluate=False, progress=False, log=lambda *_: None)
    # convert() itself reloads the written checkpoint and compares every tensor bit for bit.
    assert rep.num_parameters == sum(v.numel() for v in sd.values())
    assert json.loads((out / 'hparams.json').read_text())['enc_blocks'] == hps.enc_blocks

  def fails(mutated, match, hps_=hps):
    torch.save(mutated, src)
    out = tmp_path / 'bad'
    before = leftovers(tmp_path)
    with pytest.raises(ConversionError, match=match):
      convert(str(src), str(out), hps_, evaluate=False, progress=False, log=lambda *_: None)
    assert leftovers(tmp_path) == before, 'a failed conversion left files behind'

  keys = list(sd)
  removed = dict(sd)
  del removed[keys[len(keys) // 2]]
  fails(removed, r'missing keys \(1\): ' + keys[len(keys) // 2].replace('.', r'\.'))
  fails({**sd, 'decoder.extra.weight': torch.zeros(3)}, r'unexpected keys \(1\): decoder\.extra')
  wrong = dict(sd)
  wrong['encoder.in_conv.bias'] = torch.zeros(7)
  fails(wrong, r'wrongly shaped keys \(1\): encoder\.in_conv\.bias has \(7,\)')
  other = 'cifar10' if name != 'cifar10' else 'imagenet32'
  fails(sd, f"fits preset '{name}' exactly", get_preset(other))


@pytest.mark.parametrize('name', sorted(PRESETS))
def test_every_preset_accounts_for_every_key(name):
  """The checks convert() runs on a checkpoint's shapes, on every official manifest: exact
  match, then one missing, one unexpected and one wrongly shaped key, and another preset's."""
  p = ref.REFERENCE_DIR / f'manifest_{name}.json'
  if not p.exists():
    pytest.skip(f'{p} not found')
  with open(p) as f:
    shapes = {k: tuple(s) for k, s, _ in json.load(f)['state_dict']}
  hps = get_preset(name)

  def check(sh, hps_=hps):
    check_state_dict(sh, hps_, hint=mismatch_hint(sh, hps_))

  check(shapes)
  keys = list(shapes)
  with pytest.raises(StateDictMismatch, match=r'missing keys \(1\): ' + re.escape(keys[7])):
    check({k: v for k, v in shapes.items() if k != keys[7]})
  with pytest.raises(StateDictMismatch, match=r'unexpected keys \(1\): decoder\.extra'):
    check({**shapes, 'decoder.extra.weight': (3,)})
  with pytest.raises(StateDictMismatch, match=r'wrongly shaped keys \(1\): '
                     + re.escape(keys[-1]) + r' has \(7,\)'):
    check({**shapes, keys[-1]: (7,)})
  for other in sorted(set(PRESETS) - {name}):
    if get_preset(other).enc_blocks == hps.enc_blocks and \
        get_preset(other).dec_blocks == hps.dec_blocks:
      continue
    with pytest.raises(StateDictMismatch, match=f"fits preset '{name}' exactly"):
      check(shapes, get_preset(other))


def test_cli_errors_and_refusals(tmp_path):
  text = tmp_path / 'notes.th'
  text.write_text('these are not weights\n' * 10)
  empty = tmp_path / 'empty.th'
  empty.write_bytes(b'')
  good = tmp_path / 'good.th'
  torch.save({'a': torch.zeros(3)}, good)
  truncated = tmp_path / 'truncated.th'
  truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])

  class Evil:
    def __reduce__(self):
      return (os.system, (f'touch {tmp_path}/pwned',))

  evil = tmp_path / 'evil.th'
  with open(evil, 'wb') as f:
    pickle.dump({'encoder.in_conv.weight': Evil()}, f)
  evil_zip = tmp_path / 'evil_zip.th'
  torch.save({'x': Evil()}, evil_zip)

  cases = [(text, 'not a PyTorch checkpoint'), (empty, 'empty'),
           (truncated, 'truncated or corrupt'), (evil, 'refused'), (evil_zip, 'refused'),
           (tmp_path / 'missing.th', 'no such file')]
  for path, msg in cases:
    with pytest.raises(ConversionError, match=msg) as e:
      convert(str(path), str(tmp_path / 'o'), TINY, evaluate=False, progress=False)
    assert str(path) in str(e.value)
  assert not (tmp_path / 'pwned').exists()
  assert not (tmp_path / 'o').exists()
  # The CLI: one line on stderr, exit code 2, no traceback.
  r = run_cli('--torch_checkpoint', str(evil), '--preset', 'cifar10', '--output',
              str(tmp_path / 'o'))
  assert r.returncode == 2 and 'refused' in r.stderr and 'Traceback' not in r.stderr
  r = run_cli('--torch_checkpoint', str(good), '--preset', 'cifar100', '--output',
              str(tmp_path / 'o'))
  assert r.returncode == 2 and "unknown preset 'cifar100'" in r.stderr
  assert not (tmp_path / 'o').exists()


def test_infer_architecture(tmp_path):
  """A checkpoint with fewer blocks than its preset string (as the released ffhq1024 one,
  openai/vdvae#3): strict conversion names the missing blocks; --infer_architecture rebuilds
  block strings that fit every key and shape."""
  true = TINY.replace(enc_blocks='16x1,16d2,8x1,8d2,4x1,4d4', dec_blocks='1x1,4m1,8m4,8x1,16m8,16x1')
  template = TINY.replace(enc_blocks='16x1,16d2,8x1,8d2,4x1,4d4,1x3',
                          dec_blocks='1x1,4m1,8m4,8x1,16m8,16x1')
  true = true.replace(enc_blocks='16x1,16d2,8x1,8d2,4x1,4d4,1x1')
  sd = {e.torch_key: torch.randn(*e.torch_shape) for e in state_dict_entries(true)}
  src = tmp_path / 'ckpt.th'
  torch.save(sd, src)
  with pytest.raises(ConversionError, match=r'missing keys \(16\): encoder\.enc_blocks\.7\.'):
    convert(str(src), str(tmp_path / 'strict'), template, evaluate=False, progress=False)
  logs = []
  rep = convert(str(src), str(tmp_path / 'inferred'), template, infer_architecture=True,
                evaluate=False, progress=False, log=logs.append)
  assert rep.hps.enc_blocks == true.enc_blocks and rep.hps.dec_blocks == true.dec_blocks
  assert any('inferred enc_blocks: 16x1,16d2,8x1,8d2,4x1,4d4,1x1' in l for l in logs)
  assert any('1 instead of 3 blocks' in n for n in rep.inferred_notes)
