"""Presets against the official manifests (../shared/reference/manifest_<preset>.json): every
hyperparameter, every state_dict name and shape, the parameter count, and the official init."""
import json
import math

import jax
import numpy as np
import pytest

import reference_sets as ref
from vdvae_jax.convert.state_dict import num_parameters, state_dict_entries
from vdvae_jax.hparams import PRESETS, HParams, HParamsError, get_preset
from vdvae_jax.model import api

OPT_FIELDS = ['lr', 'wd', 'adam_beta1', 'adam_beta2', 'grad_clip', 'skip_threshold', 'ema_rate',
              'warmup_iters', 'n_batch']


def manifest(name):
  p = ref.REFERENCE_DIR / f'manifest_{name}.json'
  if not p.exists():
    pytest.skip(f'{p} not found (set VDVAE_REFERENCE_DIR)')
  with open(p) as f:
    return json.load(f)


@pytest.mark.parametrize('name', sorted(PRESETS))
def test_preset_matches_official_hparams(name):
  m, hps = manifest(name), get_preset(name)
  for k, v in m['architecture'].items():
    assert getattr(hps, k) == v, (name, k)
  for k in OPT_FIELDS:
    assert getattr(hps, k) == m['H'][k], (name, k)
  assert hps.n_enc_blocks == m['num_encoder_blocks']
  assert hps.n_dec_blocks == m['num_decoder_blocks']


@pytest.mark.parametrize('name', sorted(PRESETS))
def test_state_dict_names_shapes_and_count(name):
  m, hps = manifest(name), get_preset(name)
  entries = state_dict_entries(hps)
  assert [[e.torch_key, list(e.torch_shape)] for e in entries] == \
      [[k, s] for k, s, _ in m['state_dict']]
  assert num_parameters(hps) == m['total_parameters']
  # One-to-one with the Flax tree that the model itself creates.
  flat = {tuple(k.key for k in path): leaf.shape
          for path, leaf in jax.tree_util.tree_flatten_with_path(api.abstract_params(hps))[0]}
  expected = {e.flax_path: e.to_flax(np.empty(e.torch_shape, np.float32)).shape for e in entries}
  assert flat == expected
  assert sum(math.prod(s) for s in flat.values()) == m['total_parameters']


@pytest.mark.parametrize('name', ['cifar10', 'ffhq1024'])
def test_official_initialisation(name):
  """Conv weights U(+-1/sqrt(fan_in)); every bias 0; prior c4 zero; encoder c4 x sqrt(1/n_enc);
  decoder z_proj and resnet c4 x sqrt(1/n_dec); gain 1, bias 0, bias_xs 0."""
  hps = get_preset(name)
  params = api.init_params(hps, jax.random.key(0))
  n_enc, n_dec = hps.n_enc_blocks, hps.n_dec_blocks
  for e in state_dict_entries(hps):
    node = params
    for p in e.flax_path:
      node = node[p]
    a = np.asarray(node)
    key = e.torch_key
    if key == 'decoder.gain':
      assert np.all(a == 1.0)
    elif e.kind != 'conv_weight':
      assert np.all(a == 0.0), key
    elif key.endswith('prior.c4.weight'):
      assert np.all(a == 0.0), key
    else:
      scale = 1.0
      if key.startswith('encoder.enc_blocks') and key.endswith('c4.weight'):
        scale = math.sqrt(1 / n_enc)
      elif key.endswith('z_proj.weight') or key.endswith('resnet.c4.weight'):
        scale = math.sqrt(1 / n_dec)
      bound = scale / math.sqrt(np.prod(a.shape[:3]))
      assert np.max(np.abs(a)) <= bound * (1 + 1e-6), key
      if a.size >= 1000:   # uniform on [-b, b]: std b/sqrt(3), max close to b
        assert abs(a.std() / (bound / math.sqrt(3)) - 1) < 0.1, key
        assert np.max(np.abs(a)) > 0.95 * bound, key


S_LIKE = dict(image_size=32, width=32, zdim=4, dataset='cifar10', num_mixtures=5,
              enc_blocks='32x2,32d2,16x2,16d2,8x2,8d2,4x2,4d4,1x2',
              dec_blocks='1x1,4m1,4x2,8m4,8x2,16m8,16x2,32m16,32x2')


@pytest.mark.parametrize('field,value,token', [
    ('enc_blocks', '32x2,32d2,12x2,1x1', "'12x2'"),            # unknown resolution
    ('enc_blocks', '32x2,32d3,16x1', "'32d3'"),                 # not divisible
    ('enc_blocks', '32x2,32q2', "'32q2'"),                      # unparsable
    ('dec_blocks', '1x1,4m2,4x2,8m4,16m8,32m16', "'4m2'"),      # mix-in never produced
    ('dec_blocks', '1x1,4m1,4x2,8m4,8x2,16m8,16x2,32m16,64x1', "'64x1'"),  # no encoder res 64
    ('custom_width_str', '16:64,:32', "':32'"),                 # width token without resolution
    ('custom_width_str', '16:', "'16:'"),
])
def test_bad_hparams_name_the_token(field, value, token):
  with pytest.raises(HParamsError, match=token):
    HParams(**{**S_LIKE, field: value})


def test_other_hparam_errors():
  with pytest.raises(HParamsError, match='unknown preset'):
    get_preset('cifar100')
  with pytest.raises(HParamsError, match="unknown hyperparameter.*'widht'"):
    HParams.from_dict({**S_LIKE, 'widht': 3})
  with pytest.raises(HParamsError, match='dataset'):
    HParams(**{**S_LIKE, 'dataset': 'mnist'})
  with pytest.raises(HParamsError, match='must end at image_size'):
    HParams(**{**S_LIKE, 'dec_blocks': '1x1,4m1,8m4,16m8'})
  # Widths may grow going down (zero padding) but not shrink.
  with pytest.raises(HParamsError, match='shrinks'):
    HParams(**{**S_LIKE, 'custom_width_str': '16:16'})
  HParams(**{**S_LIKE, 'custom_width_str': '16:64,8:64,4:64,1:64'})


def test_preprocessing_constants():
  """Official data.py constants; 5-bit targets only for ffhq_256."""
  pp = {n: get_preset(n).preprocessing for n in PRESETS}
  assert pp['ffhq256'].shift == -112.8666757481 and pp['ffhq256'].scale == 1 / 69.84780273
  assert pp['ffhq256'].low_bit and get_preset('ffhq256').low_bit
  assert not any(get_preset(n).low_bit for n in PRESETS if n != 'ffhq256')
  assert pp['cifar10'].shift == -120.63838 and pp['cifar10'].scale == 1 / 64.16736
  assert pp['imagenet32'].shift == -116.2373 and pp['imagenet64'].shift == -115.92961967
  assert pp['ffhq1024'].shift_loss == -0.5 and pp['ffhq1024'].scale_loss == 2.0
  assert pp['ffhq1024'].input_scale == 1 / 255
