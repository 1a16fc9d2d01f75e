"""The public API on a tiny model: noise replay, temperatures, prefixes, errors, no retracing."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tiny import TINY, tiny_params
from vdvae_jax.data.preprocess import preprocess
from vdvae_jax.model import api


def images(n=2, seed=0):
  return jnp.asarray(np.random.RandomState(seed).randint(0, 256, (n, 16, 16, 3)), jnp.uint8)


def randomised_params():
  """Official init zeroes the prior's last conv and the biases; perturb so every path matters."""
  p = tiny_params()
  leaves, tree = jax.tree.flatten(p)
  keys = jax.random.split(jax.random.key(1), len(leaves))
  return jax.tree.unflatten(tree, [l + 0.05 * jax.random.normal(k, l.shape)
                                   for l, k in zip(leaves, keys)])


def test_elbo_noise_replay_and_mean():
  params = randomised_params()
  x, t = preprocess(images(), TINY)
  key = jax.random.key(3)
  a = api.elbo(params, TINY, x, t, rng=key)
  b = api.elbo(params, TINY, x, t, eps=api.standard_normal_eps(key, TINY, 2))
  np.testing.assert_array_equal(a.elbo, b.elbo)
  m = api.elbo(params, TINY, x, t, posterior='mean')
  assert not np.allclose(a.elbo, m.elbo)
  assert a.kl_per_block.shape == (TINY.n_dec_blocks, 2)
  np.testing.assert_allclose(a.rate, a.kl_per_block.sum(0) / TINY.ndims, rtol=1e-6)
  np.testing.assert_allclose(a.bits_per_dim, a.elbo / np.log(2), rtol=1e-6)
  with pytest.raises(ValueError, match='rng or eps'):
    api.elbo(params, TINY, x, t)
  with pytest.raises(ValueError, match='posterior'):
    api.elbo(params, TINY, x, t, posterior='median')


def test_decode_prefix_temperature_and_replay():
  params = randomised_params()
  x, _ = preprocess(images(), TINY)
  z = api.encode(params, TINY, x)
  assert [a.shape for a in z] == api.latent_shapes(TINY, 2)
  key = jax.random.key(5)
  # All latents fixed: no noise needed, deterministic.
  full = api.decode(params, TINY, z)
  # A prefix of 3 blocks fixed, the rest at temperature 0 is the prior mean, whatever the noise.
  a = api.decode(params, TINY, z[:3], temperature=0.0, rng=key)
  b = api.decode(params, TINY, z[:3], temperature=0.0, rng=jax.random.key(6))
  np.testing.assert_allclose(a, b, atol=1e-6)
  assert not np.allclose(a, full, atol=1e-3)
  # Per-block temperatures: t_i = 0 where the block is fixed anyway equals a scalar temperature.
  temps = [0.0] * 3 + [0.7] * (TINY.n_dec_blocks - 3)
  c = api.decode(params, TINY, z[:3], temperature=temps, rng=key)
  d = api.decode(params, TINY, z[:3], temperature=0.7, rng=key)
  np.testing.assert_allclose(c, d, atol=1e-6)
  with pytest.raises(ValueError, match='one value per decoder block'):
    api.decode(params, TINY, z[:3], temperature=[0.5, 0.5], rng=key)
  with pytest.raises(ValueError, match='rng or eps'):
    api.decode(params, TINY, n=2)


def test_sample_is_one_jitted_function_and_replays():
  params = randomised_params()
  key = jax.random.key(7)
  s1 = api.sample(params, TINY, 3, temperature=0.8, rng=key)
  assert s1.image.dtype == jnp.uint8 and s1.image.shape == (3, 16, 16, 3)
  assert s1.mix_index.shape == (3, 16, 16)
  before = api._sample._cache_size()
  s2 = api.sample(params, TINY, 3, temperature=0.5, rng=key)   # new temperature, no retrace
  assert api._sample._cache_size() == before
  assert not np.array_equal(s1.x, s2.x)
  s3 = api.sample(params, TINY, 3, temperature=0.8, rng=key)
  np.testing.assert_array_equal(s1.image, s3.image)
  # DMoL sampling with explicit uniforms equals the fused sampler.
  k_eps, k_dmol = jax.random.split(key)
  l = api.dmol_params(params, TINY, s1.px_z)
  from vdvae_jax.model.likelihood import dmol_uniforms
  u_mix, u_log = dmol_uniforms(k_dmol, (3, 16, 16), TINY.num_mixtures)
  s4 = api.dmol_sample(l, u_mix=u_mix, u_logistic=u_log)
  np.testing.assert_allclose(s4.x, s1.x, atol=1e-6)


def test_preprocess_rejects_bad_input():
  with pytest.raises(TypeError, match='uint8'):
    preprocess(jnp.zeros((1, 16, 16, 3), jnp.float32), TINY)
  with pytest.raises(ValueError, match=r'\[B,H,W,3\]'):
    preprocess(jnp.zeros((1, 16, 16, 4), jnp.uint8), TINY)


# Each option in at least one combination (the convolution formulations alone: test_compute.py).
COMPUTE_OPTIONS = [dict(scan_blocks=True, remat=True, conv_impl='im2col'),
                   dict(scan_blocks=True, remat=True, conv_impl='custom_vjp'),
                   dict(scan_blocks=True, remat=True, remat_policy='save_convs',
                        conv_impl='custom_vjp'),
                   dict(remat=True, remat_policy='save_convs')]


@pytest.mark.parametrize('options', COMPUTE_OPTIONS, ids=str)
def test_compute_options_are_the_same_function(options):
  """remat, im2col convolutions and scanned runs of blocks change how, not what: same parameter
  tree, same loss and gradients (to float32 rounding)."""
  from vdvae_jax.train.losses import elbo_loss
  params = randomised_params()
  batch = {'image': images(2)}
  key = jax.random.key(0)
  out = {}
  for name, hps in (('default', TINY), ('option', TINY.replace(**options))):
    assert jax.tree.structure(api.abstract_params(hps)) == jax.tree.structure(params)
    (loss, _), g = jax.jit(jax.value_and_grad(elbo_loss(hps), has_aux=True))(params, batch, key)
    out[name] = (loss, g)
  np.testing.assert_allclose(out['option'][0], out['default'][0], rtol=1e-6)
  # Summation order differs (e.g. im2col sums 9C products at once): compare each gradient
  # relative to its own scale, and the whole gradient by its norm.
  ga, gb = jax.tree.leaves(out['option'][1]), jax.tree.leaves(out['default'][1])
  for a, b in zip(ga, gb):
    assert np.max(np.abs(a - b)) <= 1e-4 * np.max(np.abs(b)) + 1e-9
  diff = np.sqrt(sum(np.sum((np.asarray(a) - np.asarray(b)) ** 2) for a, b in zip(ga, gb)))
  assert diff <= 1e-5 * np.sqrt(sum(np.sum(np.asarray(b) ** 2) for b in gb))
