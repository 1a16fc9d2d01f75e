"""Parity with the official PyTorch VDVAE on every golden set in VDVAE_REFERENCE_DIR (marker
`reference`). Tolerances (float32) are those of the core-model issue; never loosen them."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import reference_sets as ref
from vdvae_jax.model import api
from vdvae_jax.model.gaussian import gaussian_analytical_kl
from vdvae_jax.model.likelihood import dmol_nll, dmol_sample

pytestmark = pytest.mark.reference
VARIANTS = ref.variants()
if not VARIANTS:
  pytest.skip(f'no golden sets in {ref.REFERENCE_DIR} (set VDVAE_REFERENCE_DIR)',
              allow_module_level=True)


def assert_rel(ours, golden, tol=1e-5, what=''):
  ours, golden = np.asarray(ours, np.float64), np.asarray(golden, np.float64)
  assert ours.shape == golden.shape, (what, ours.shape, golden.shape)
  err = np.max(np.abs(ours - golden) / np.abs(golden))
  assert err <= tol, f'{what}: relative error {err:.3g} > {tol}'


def assert_abs(ours, golden, tol=1e-4, what=''):
  ours, golden = np.asarray(ours, np.float64), np.asarray(golden, np.float64)
  assert ours.shape == golden.shape, (what, ours.shape, golden.shape)
  err = np.max(np.abs(ours - golden))
  assert err <= tol, f'{what}: max abs error {err:.3g} > {tol}'


def assert_kl(ours, golden, what=''):
  """|ours - golden| <= 1e-6 + 1e-5 |golden| (small blocks cancel O(1) terms)."""
  ours, golden = np.asarray(ours, np.float64), np.asarray(golden, np.float64)
  assert ours.shape == golden.shape, (what, ours.shape, golden.shape)
  excess = np.abs(ours - golden) - (1e-6 + 1e-5 * np.abs(golden))
  assert np.all(excess <= 0), f'{what}: KL off by {np.max(np.abs(ours - golden)):.3g}'


def assert_sample(ours: api.Sample, g_float, g_index, what):
  """Mixture indices equal on >= 99.9% of pixels; the float sample equal where they agree."""
  same = np.asarray(ours.mix_index) == g_index
  assert same.mean() >= 0.999, f'{what}: mixture index equal on {same.mean():.5f} of pixels'
  assert_abs(np.asarray(ours.x)[same], g_float[same], 1e-4, what + ' float sample')


@pytest.fixture(params=VARIANTS, scope='module')
def v(request):
  return request.param


@pytest.fixture(scope='module')
def mean_pass(v):
  g = ref.golden(v)
  return api.elbo(ref.params(v), ref.hparams(v), g['x_input'], g['x_target'], posterior='mean')


def test_hparams_structure(v):
  hps, g = ref.hparams(v), ref.golden(v)
  layers = hps.decoder_layers
  np.testing.assert_array_equal(g['dec_block_res'], [r for r, _ in layers])
  np.testing.assert_array_equal(g['dec_block_mixin'], [-1 if m is None else m for _, m in layers])
  np.testing.assert_array_equal(g['dec_block_width'], [hps.width_at(r) for r, _ in layers])


def test_deterministic_pass(v, mean_pass):
  g, out = ref.golden(v), mean_pass
  assert_rel(out.elbo, g['elbo_per_image'], what='elbo')
  assert_rel(out.distortion, g['distortion_per_image'], what='distortion')
  assert_rel(out.rate, g['rate_per_image'], what='rate')
  assert_rel(out.distortion, g['nll_per_image'], what='nll')
  assert_rel(out.elbo.mean(), g['elbo_official'], what='batch-mean elbo')
  assert_rel(out.distortion.mean(), g['distortion_official'], what='batch-mean distortion')
  assert_rel(out.rate.mean(), g['rate_official'], what='batch-mean rate')
  assert_rel(out.bits_per_dim, g['elbo_per_image'] / np.log(2), what='bits/dim')
  assert_kl(out.kl_per_block, g['kl_sum_per_block'], 'kl_sum_per_block')
  assert_abs(out.px_z, ref.nhwc(g['px_z']), what='px_z')
  assert_abs(out.dmol_params, g['dmol_params'], what='dmol_params')


def test_per_element_kl(v):
  hps, g = ref.hparams(v), ref.golden(v)
  out = jax.jit(lambda p, x, t: __import__('vdvae_jax.model.vae', fromlist=['VDVAE']).VDVAE(hps)
                .apply({'params': p}, x, t))(ref.params(v), g['x_input'], g['x_target'])
  for i, s in enumerate(out['stats']):
    assert_kl(s['kl'], ref.nhwc(g[f'kl_block_{i:03d}']), f'kl_block_{i:03d}')


def test_8bit_likelihood_branch(v, mean_pass):
  g = ref.golden(v)
  nll = dmol_nll(g['x_target_8bit_extra'], mean_pass.dmol_params, low_bit=False)
  assert_rel(nll, g['nll_per_image_8bit_extra'], what='8-bit nll')


def test_noisy_pass(v):
  hps, g = ref.hparams(v), ref.golden(v)
  eps = ref.per_block(g, 'noisy_eps_', hps.n_dec_blocks)
  out = api.elbo(ref.params(v), hps, g['x_input'], g['x_target'], eps=eps)
  assert_rel(out.elbo, g['noisy_elbo_per_image'], what='noisy elbo')
  assert_rel(out.distortion, g['noisy_distortion_per_image'], what='noisy distortion')
  assert_rel(out.rate, g['noisy_rate_per_image'], what='noisy rate')
  assert_kl(out.kl_per_block, g['noisy_kl_sum_per_block'], 'noisy kl_sum_per_block')
  assert_abs(out.px_z, ref.nhwc(g['noisy_px_z']), what='noisy px_z')


def test_latents_and_fixed_latent_decode(v):
  hps, g, params = ref.hparams(v), ref.golden(v), ref.params(v)
  z = api.encode(params, hps, g['x_input'])
  golden_z = ref.per_block(g, 'latent_', hps.n_dec_blocks)
  for i, (a, b) in enumerate(zip(z, golden_z)):
    assert_abs(a, b, what=f'latent {i}')
  px_z = api.decode(params, hps, golden_z)
  assert_abs(px_z, ref.nhwc(g['px_z_set_latents']), what='px_z_set_latents')
  s = api.dmol_sample(api.dmol_params(params, hps, px_z), u_mix=g['set_latents_dmol_u_mix'],
                      u_logistic=g['set_latents_dmol_u_logistic'])
  assert_sample(s, g['set_latents_sample_float'], g['set_latents_mix_index'], 'set-latents')
  # The sample through the one jitted sampler, latents fixed for every block.
  s2 = api.sample(params, hps, golden_z[0].shape[0], latents=golden_z,
                  u_mix=g['set_latents_dmol_u_mix'], u_logistic=g['set_latents_dmol_u_logistic'])
  assert_sample(s2, g['set_latents_sample_float'], g['set_latents_mix_index'], 'set-latents jit')


def test_partial_decode_at_temperature(v):
  hps, g, params = ref.hparams(v), ref.golden(v), ref.params(v)
  k = int(g['partial_k'])
  latents = ref.per_block(g, 'latent_', k)
  eps = ref.per_block(g, 'partial_eps_', hps.n_dec_blocks, start=k)
  px_z = api.decode(params, hps, latents, temperature=float(g['partial_temperature']), eps=eps)
  assert_abs(px_z, ref.nhwc(g['px_z_partial']), what='px_z_partial')


def test_prior_sample_with_recorded_noise(v):
  hps, g, params = ref.hparams(v), ref.golden(v), ref.params(v)
  eps = ref.per_block(g, 'prior_eps_', hps.n_dec_blocks)
  np.testing.assert_array_equal(g['prior_eps_shapes'][:, [0, 2, 3, 1]], [e.shape for e in eps])
  m, t = eps[0].shape[0], float(g['prior_temperature'])
  px_z = api.decode(params, hps, n=m, temperature=t, eps=eps)
  assert_abs(px_z, ref.nhwc(g['px_z_prior']), what='px_z_prior')
  s = api.sample(params, hps, m, temperature=t, eps=eps, u_mix=g['prior_dmol_u_mix'],
                 u_logistic=g['prior_dmol_u_logistic'])
  assert_abs(s.px_z, ref.nhwc(g['px_z_prior']), what='sampler px_z')
  assert_sample(s, g['prior_sample_float'], g['prior_mix_index'], 'prior sample')
  same = np.asarray(s.mix_index) == g['prior_mix_index']
  assert (np.asarray(s.image) == g['prior_sample_uint8'])[same].mean() >= 0.999


# Compute structures (same function, same parameters): the default unrolled lax convolutions,
# and scanned runs of blocks with rematerialisation and the other convolution formulations.
# Same tolerances.
STRUCTURES = {'default': {},
              'scan_remat_im2col': dict(scan_blocks=True, remat=True, conv_impl='im2col'),
              'scan_remat_custom_vjp': dict(scan_blocks=True, remat=True, conv_impl='custom_vjp')}


@pytest.mark.parametrize('structure', list(STRUCTURES))
def test_structures_deterministic_pass(v, structure):
  hps, g = ref.hparams(v).replace(**STRUCTURES[structure]), ref.golden(v)
  out = api.elbo(ref.params(v), hps, g['x_input'], g['x_target'], posterior='mean')
  assert_rel(out.elbo, g['elbo_per_image'], what='elbo')
  assert_kl(out.kl_per_block, g['kl_sum_per_block'], 'kl_sum_per_block')
  assert_abs(out.px_z, ref.nhwc(g['px_z']), what='px_z')
  assert_abs(out.dmol_params, g['dmol_params'], what='dmol_params')


@pytest.mark.parametrize('structure', list(STRUCTURES))
def test_gradients(v, structure):
  grads_ref = ref.optional('grads', v)
  if grads_ref is None:
    pytest.skip(f'{v} has no grads file')
  hps, g, params = ref.hparams(v).replace(**STRUCTURES[structure]), ref.golden(v), ref.params(v)

  def loss(p):
    return api._elbo(hps, p, g['x_input'], g['x_target'], None).elbo.mean()

  value, grads = jax.jit(jax.value_and_grad(loss))(params)
  assert_rel(value, grads_ref['__elbo__'], what='loss')
  norm = float(np.sqrt(sum(np.sum(np.square(np.asarray(x, np.float64)))
                           for x in jax.tree.leaves(grads))))
  assert_rel(norm, grads_ref['__grad_total_norm__'], 1e-4, 'gradient global norm')
  # Each parameter's gradient maps to the official name (layout conversion included).
  from vdvae_jax.convert.state_dict import params_to_state_dict
  ours = params_to_state_dict(grads, hps)
  worst = max(np.max(np.abs(ours[k] - grads_ref[k])) / (np.max(np.abs(grads_ref[k])) + 1e-12)
              for k in ours if np.max(np.abs(grads_ref[k])) > 0)
  assert worst <= 1e-3, f'per-parameter gradient (relative to its max) off by {worst:.3g}'


# bfloat16 compute (model/precision.py), with float32 and with bfloat16 parameters and in the
# training structure: per-image ELBO within 1e-2 relative of the golden (float32) values and
# bits/dim within 0.01, posterior mean and recorded noise. The float32 tolerances above are
# untouched; float32 is the default and the reference program.
PRECISIONS = {'bf16': dict(dtype='bfloat16'),
              'bf16_params': dict(dtype='bfloat16', param_dtype='bfloat16'),
              'bf16_scan_remat_custom_vjp': dict(STRUCTURES['scan_remat_custom_vjp'],
                                                 dtype='bfloat16'),
              'bf16_params_scan_remat_custom_vjp': dict(STRUCTURES['scan_remat_custom_vjp'],
                                                        dtype='bfloat16', param_dtype='bfloat16')}


@pytest.mark.parametrize('precision', list(PRECISIONS))
def test_bfloat16_elbo(v, precision):
  hps, g = ref.hparams(v).replace(**PRECISIONS[precision]), ref.golden(v)
  params = api.cast_params(ref.params(v), hps)
  out = api.elbo(params, hps, g['x_input'], g['x_target'], posterior='mean')
  assert out.elbo.dtype == out.bits_per_dim.dtype == jnp.float32
  assert_rel(out.elbo, g['elbo_per_image'], 1e-2, 'bf16 elbo')
  assert_abs(out.bits_per_dim, g['elbo_per_image'] / np.log(2), 0.01, 'bf16 bits/dim')
  noisy = api.elbo(params, hps, g['x_input'], g['x_target'],
                   eps=ref.per_block(g, 'noisy_eps_', hps.n_dec_blocks))
  assert_rel(noisy.elbo, g['noisy_elbo_per_image'], 1e-2, 'bf16 noisy elbo')
  assert_abs(noisy.bits_per_dim, g['noisy_elbo_per_image'] / np.log(2), 0.01,
             'bf16 noisy bits/dim')


def test_float64_parity(v):
  f64 = ref.optional('f64', v)
  if f64 is None:
    pytest.skip(f'{v} has no f64 file')
  hps, g = ref.hparams(v), ref.golden(v)
  with jax.enable_x64(True):
    params = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), ref.params(v))
    x, t = (jnp.asarray(g[k], jnp.float64) for k in ('x_input', 'x_target'))
    out = api.elbo(params, hps, x, t, posterior='mean')
    eps = [jnp.asarray(e, jnp.float64) for e in ref.per_block(g, 'noisy_eps_', hps.n_dec_blocks)]
    noisy = api.elbo(params, hps, x, t, eps=eps)
    prior_eps = [jnp.asarray(e, jnp.float64)
                 for e in ref.per_block(g, 'prior_eps_', hps.n_dec_blocks)]
    px_prior = api.decode(params, hps, n=prior_eps[0].shape[0],
                          temperature=float(g['prior_temperature']), eps=prior_eps)
    nll8 = dmol_nll(jnp.asarray(g['x_target_8bit_extra'], jnp.float64), out.dmol_params,
                    low_bit=False)
    assert out.elbo.dtype == jnp.float64
    tol = 1e-9
    assert_rel(out.elbo, f64['f64_elbo_per_image'], tol, 'f64 elbo')
    assert_rel(out.elbo.mean(), f64['f64_elbo_official'], tol, 'f64 batch elbo')
    assert_rel(out.distortion, f64['f64_distortion_per_image'], tol, 'f64 distortion')
    assert_rel(out.rate, f64['f64_rate_per_image'], tol, 'f64 rate')
    assert_rel(nll8, f64['f64_nll_per_image_8bit_extra'], tol, 'f64 8-bit nll')
    assert_rel(noisy.elbo, f64['f64_noisy_elbo_per_image'], tol, 'f64 noisy elbo')
    # Arrays that cross zero: relative to their largest magnitude.
    for name, ours, key in [('kl sums', out.kl_per_block, 'f64_kl_sum_per_block'),
                            ('px_z', out.px_z, 'f64_px_z'), ('noisy px_z', noisy.px_z, 'f64_noisy_px_z'),
                            ('prior px_z', px_prior, 'f64_px_z_prior')]:
      gold = f64[key] if key == 'f64_kl_sum_per_block' else ref.nhwc(f64[key])
      assert_abs(ours, gold, tol * np.max(np.abs(gold)), 'f64 ' + name)


@pytest.mark.parametrize('units', ref.unit_files() or ['(none)'])
def test_units(units):
  if units == '(none)':
    pytest.skip('no units file')
  u = dict(np.load(ref.REFERENCE_DIR / units))
  assert_rel(dmol_nll(u['dmol_x_5bit'], u['dmol_l'], low_bit=True), u['dmol_nll_5bit'],
             what='dmol 5-bit')
  assert_rel(dmol_nll(u['dmol_x_8bit'], u['dmol_l'], low_bit=False), u['dmol_nll_8bit'],
             what='dmol 8-bit')
  x, idx = dmol_sample(u['dmol_l'], u['dmol_sample_u_mix'], u['dmol_sample_u_logistic'],
                       return_index=True)
  assert_sample(api.Sample(None, x, idx, None), u['dmol_sample_float'],
                u['dmol_sample_mix_index'], 'dmol unit sample')
  kl = gaussian_analytical_kl(u['kl_mu1'], u['kl_mu2'], u['kl_logsigma1'], u['kl_logsigma2'])
  assert_kl(kl, u['kl'], 'unit kl')


def test_preprocessing(v):
  from vdvae_jax.data.preprocess import preprocess
  hps, g = ref.hparams(v), ref.golden(v)
  x_input, x_target = preprocess(jnp.asarray(g['images_uint8']), hps)
  np.testing.assert_array_equal(x_input, g['x_input'])
  np.testing.assert_array_equal(x_target, g['x_target'])
  x_input, x_target_8bit = preprocess(jnp.asarray(g['images_uint8']), hps.replace(dataset='cifar10'))
  np.testing.assert_array_equal(x_target_8bit, g['x_target_8bit_extra'])
