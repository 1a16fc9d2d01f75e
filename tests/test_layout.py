"""The stacked parameter layout (model/layout.py): scanned runs of blocks pre-stacked in the train
state. Same function as the per-block layout in every model path; lossless conversion; the
training loop holds it and still exports, evaluates and resumes in the per-block layout."""
import jax
import numpy as np
import pytest

from tiny import TINY
from vdvae_jax.model import api
from vdvae_jax.model.layout import block_params, run_key, run_params, stack_runs, unstack_runs
from vdvae_jax.model.vae import scan_layout

# Runs of 2-3 identical blocks in encoder and decoder (TINY's runs all have length one).
RUNS = TINY.replace(enc_blocks='16x2,16d2,8x3,8d2,4x2,4d4,1x2',
                    dec_blocks='1x2,4m1,4x3,8m4,8x2,16m8,16x2')
SCANNED = RUNS.replace(scan_blocks=True, remat=True, conv_impl='custom_vjp')


def images(n):
  return np.random.RandomState(0).randint(0, 256, (n, 16, 16, 3)).astype(np.uint8)


@pytest.fixture(scope='module')
def params():
  p = api.init_params(RUNS, jax.random.key(0))
  # Non-zero everywhere (zero-initialised last layers would hide a mix-up of blocks).
  leaves, tree = jax.tree.flatten(p)
  keys = jax.random.split(jax.random.key(1), len(leaves))
  return jax.tree.unflatten(tree, [np.asarray(a + 0.02 * jax.random.normal(k, a.shape))
                                   for a, k in zip(leaves, keys)])


def test_stack_and_unstack_are_inverse(params):
  spec = scan_layout(SCANNED)
  assert scan_layout(RUNS) == {}                     # no scan_blocks: per-block layout
  stacked = stack_runs(params, spec)
  dec = stacked['decoder']
  assert run_key('dec_blocks_', 6, 8) == 'dec_blocks_6_to_7'
  # decoder runs: [0,2) [2] [3,6) [6] [7,9) [9] [10,12); mix-in blocks stay per block
  assert {k for k in dec if k.startswith('dec_blocks_')} == {
      'dec_blocks_0_to_1', 'dec_blocks_2', 'dec_blocks_3_to_5', 'dec_blocks_6',
      'dec_blocks_7_to_8', 'dec_blocks_9', 'dec_blocks_10_to_11'}
  assert 'enc_blocks_3_to_5' in stacked['encoder'] and 'enc_blocks_2' in stacked['encoder']
  a = params['decoder']['dec_blocks_4']['resnet']['c2']['kernel']
  np.testing.assert_array_equal(dec['dec_blocks_3_to_5']['resnet']['c2']['kernel'][1], a)
  np.testing.assert_array_equal(block_params(dec, 'dec_blocks_', 4)['resnet']['c2']['kernel'], a)
  np.testing.assert_array_equal(
      run_params(params['decoder'], 'dec_blocks_', 3, 6)['resnet']['c2']['kernel'],
      dec['dec_blocks_3_to_5']['resnet']['c2']['kernel'])
  back = unstack_runs(stacked)
  assert jax.tree.structure(back) == jax.tree.structure(params)
  for x, y in zip(jax.tree.leaves(back), jax.tree.leaves(params)):
    np.testing.assert_array_equal(x, y)
  abstract = api.abstract_params(RUNS)
  assert jax.tree.map(lambda a: a.shape, stack_runs(abstract, spec)) == \
      jax.tree.map(lambda a: a.shape, stacked)
  assert jax.tree.structure(unstack_runs(stack_runs(abstract, spec))) == \
      jax.tree.structure(abstract)
  labels = jax.tree.map(lambda _: 'train', params)
  assert set(jax.tree.leaves(stack_runs(labels, spec))) == {'train'}
  labels['decoder']['dec_blocks_4']['resnet']['c2']['kernel'] = 'freeze'
  with pytest.raises(ValueError, match='one label'):
    stack_runs(labels, spec)
  with pytest.raises(KeyError, match='no parameters at encoder'):
    stack_runs({'decoder': params['decoder']}, spec)


@pytest.mark.slow(seconds=65)
def test_stacked_layout_is_the_same_function(params):
  """Loss and gradients (scanned posterior), sampling (the unrolled prior pass) and the
  unrolled structure: the same outputs from either layout."""
  from vdvae_jax.train.losses import elbo_loss
  stacked = stack_runs(params, scan_layout(SCANNED))
  batch, key = {'image': images(2)}, jax.random.key(0)
  grad = jax.jit(jax.value_and_grad(elbo_loss(SCANNED), has_aux=True))
  (loss_a, _), g_a = grad(params, batch, key)
  (loss_b, _), g_b = grad(stacked, batch, key)
  np.testing.assert_allclose(loss_b, loss_a, rtol=1e-6)
  g_b = unstack_runs(g_b)
  assert jax.tree.structure(g_b) == jax.tree.structure(g_a)
  for x, y in zip(jax.tree.leaves(g_b), jax.tree.leaves(g_a)):
    np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-7 * float(np.max(np.abs(y))) + 1e-9)
  for hps in (SCANNED, RUNS):          # the unrolled structure reads block slices of the stacks
    s_a = api.sample(params, hps, 2, temperature=0.7, rng=jax.random.key(3))
    s_b = api.sample(stacked, hps, 2, temperature=0.7, rng=jax.random.key(3))
    np.testing.assert_array_equal(s_b.image, s_a.image)
  loss_c, _ = jax.jit(elbo_loss(RUNS))(stacked, batch, key)
  np.testing.assert_allclose(loss_c, loss_a, rtol=1e-6)


def test_sr_layout_covers_the_lr_encoder():
  from vdvae_jax.sr import api as sr_api
  from vdvae_jax.sr.settings import SRSettings
  sr = SRSettings(method='vdvae_sr', scale=4, lr_enc_blocks='4x2,4d4,1x2', condition='all',
                  num_conditioned=0, max_condition_res=0, gate='scalar', ky=0,
                  degradation='bicubic', sigma=None)
  spec = sr_api.scan_layout(SCANNED, sr)
  assert spec[('lr_encoder',)] == ('enc_blocks_', [(0, 2), (2, 3), (3, 5)])
  assert ('vdvae', 'decoder') in spec and ('vdvae', 'encoder') in spec
  assert sr_api.scan_layout(RUNS, sr) == {}
