"""Pixel rules of the DMoL (sample | mean | mode): each equals the quantity computed independently
(plain numpy loops over pixels and components), the mean is what the official sampler averages
to, and the samplers (unconditional and SR) produce exactly the rule's image."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tiny import TINY, tiny_params
from vdvae_jax.model import api
from vdvae_jax.model.likelihood import (dmol_mean, dmol_mode, dmol_pixels,
                                        dmol_sample, dmol_uniforms, pixels_to_uint8)

K = 4


def random_l(shape=(2, 3, 5), seed=0, mean_scale=0.5, log_scale=-2.0):
  rs = np.random.RandomState(seed)
  logits = rs.normal(size=shape + (K,)) * 2
  means = rs.uniform(-mean_scale, mean_scale, size=shape + (3, K))
  log_scales = log_scale + 0.3 * rs.normal(size=shape + (3, K))
  coeffs = rs.normal(size=shape + (3, K))
  rest = np.concatenate([means, log_scales, coeffs], axis=-1).reshape(shape + (9 * K,))
  return np.concatenate([logits, rest], axis=-1).astype(np.float32)


def numpy_rules(l):
  """Mean and mode pixel by pixel, straight from the DMoL's definition."""
  K = l.shape[-1] // 10  # noqa: N806
  out_mean = np.zeros(l.shape[:-1] + (3,))
  out_mode = np.zeros(l.shape[:-1] + (3,))
  for idx in np.ndindex(*l.shape[:-1]):
    v = l[idx].astype(np.float64)
    logits = v[:K]
    rest = v[K:].reshape(3, 3 * K)
    mu, c = rest[:, :K], np.tanh(rest[:, 2 * K:])
    pi = np.exp(logits - logits.max())
    pi /= pi.sum()
    e = np.zeros(3)
    for k in range(K):
      e0 = mu[0, k]
      e1 = mu[1, k] + c[0, k] * e0
      e2 = mu[2, k] + c[1, k] * e0 + c[2, k] * e1
      e += pi[k] * np.array([e0, e1, e2])
    out_mean[idx] = np.clip(e, -1, 1)
    k = int(np.argmax(logits))
    x0 = np.clip(mu[0, k], -1, 1)
    x1 = np.clip(mu[1, k] + c[0, k] * x0, -1, 1)
    x2 = np.clip(mu[2, k] + c[1, k] * x0 + c[2, k] * x1, -1, 1)
    out_mode[idx] = [x0, x1, x2]
  return out_mean, out_mode


def test_mean_and_mode_equal_the_definition():
  l = random_l(mean_scale=1.3)              # some means outside [-1, 1]: the clipping matters
  want_mean, want_mode = numpy_rules(l)
  np.testing.assert_allclose(dmol_mean(jnp.asarray(l)), want_mean, atol=2e-6)
  x, k = dmol_mode(jnp.asarray(l), return_index=True)
  np.testing.assert_allclose(x, want_mode, atol=2e-6)
  np.testing.assert_array_equal(k, np.argmax(l[..., :K], axis=-1))


def test_mean_is_what_the_official_sampler_averages_to():
  """Means inside [-1, 1] with small scales (clipping never bites): the average of 20,000 draws
  of the official sampler is the mean rule, within 4 standard errors."""
  l = jnp.asarray(random_l(shape=(1, 2, 3), seed=1, mean_scale=0.3, log_scale=-3.5))
  n = 20000
  u_mix, u_log = dmol_uniforms(jax.random.key(0), (n, 2, 3), K)
  draws = np.asarray(dmol_sample(jnp.broadcast_to(l, (n,) + l.shape[1:]), u_mix, u_log),
                     np.float64)
  se = draws.std(axis=0) / np.sqrt(n)
  err = np.abs(draws.mean(axis=0) - np.asarray(dmol_mean(l))[0])
  assert np.all(err <= 4 * se + 1e-6), (err, se)
  # and the mode is not the mean (the test can fail): components differ by far more than 4 se
  assert np.max(np.abs(np.asarray(dmol_mode(l)) - np.asarray(dmol_mean(l)))) > 10 * se.max()


def test_mode_is_the_sampler_with_the_median_logistic_and_the_top_component():
  l = jnp.asarray(random_l(mean_scale=1.2))
  u_mix = jnp.where(jax.nn.one_hot(jnp.argmax(l[..., :K], -1), K) > 0, 1 - 1e-7, 1e-7)
  u_log = jnp.full(l.shape[:-1] + (3,), 0.5)
  np.testing.assert_allclose(dmol_mode(l), dmol_sample(l, u_mix, u_log), atol=1e-6)


def test_bad_rule_and_uint8_conversion():
  with pytest.raises(ValueError, match="pixels must be one of sample, mean, mode; got 'median'"):
    dmol_pixels(jnp.zeros((1, 1, 1, 10 * K)), 'median')
  x = jnp.asarray([-1.0, -0.999, 0.0, 0.9999, 1.0])
  np.testing.assert_array_equal(pixels_to_uint8(x, 'mean'), [0, 0, 128, 255, 255])
  np.testing.assert_array_equal(pixels_to_uint8(x, 'sample'), [0, 0, 127, 254, 255])


@pytest.mark.parametrize('pixels', ['mean', 'mode'])
def test_samplers_give_the_rule_of_their_own_dmol(pixels):
  """api.sample and the SR sampler: image = the rule applied to the DMoL parameters of the same
  px_z, computed independently in numpy; latents are those of pixels='sample' (same rng)."""
  params = tiny_params()
  key = jax.random.key(3)
  s = api.sample(params, TINY, 2, temperature=0.7, rng=key, pixels=pixels)
  ref = api.sample(params, TINY, 2, temperature=0.7, rng=key)          # official sampler
  np.testing.assert_allclose(s.px_z, ref.px_z, atol=1e-6)
  l = np.asarray(api.dmol_params(params, TINY, s.px_z))
  want = numpy_rules(l)[0 if pixels == 'mean' else 1]
  np.testing.assert_allclose(s.x, want, atol=1e-5)
  np.testing.assert_array_equal(s.image, np.clip(np.round((want + 1) * 127.5), 0, 255))

  from vdvae_jax.sr import api as sr_api
  from vdvae_jax.sr.settings import SRSettings
  sr = SRSettings(method='diverse', scale=4, lr_enc_blocks='4x1,4d4,1x1', ky=2)
  sp = sr_api.init_params(TINY, sr, jax.random.key(1), params)
  lr = jnp.asarray(np.random.RandomState(0).randint(0, 256, (1, 4, 4, 3)), jnp.uint8)
  out = sr_api.super_resolve(sp, TINY, sr, lr, n_samples=2, temperature=0.5, pixels=pixels,
                             rng=key)
  l = np.asarray(api.dmol_params(params, TINY, out.px_z[0]))
  np.testing.assert_allclose(out.x[0], numpy_rules(l)[0 if pixels == 'mean' else 1], atol=1e-5)
