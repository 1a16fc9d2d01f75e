"""Both SR methods: exact no-op of zero gates, ky = 0 is the prior sampler, frozen parameters stay
frozen, end-to-end training on the demo data from a small pretrained VDVAE, clear errors."""
import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import reference_sets as ref
from vdvae_jax.train.config import load_config_file
from tiny import TINY, tiny_params
from vdvae_jax.data.preprocess import preprocess
from vdvae_jax.hparams import HParamsError
from vdvae_jax.model import api
from vdvae_jax.model.decoder import DecoderHooks
from vdvae_jax.model.vae import VDVAE
from vdvae_jax.sr import api as sr_api
from vdvae_jax.sr.lr_input import lr_encoder_input
from vdvae_jax.sr.settings import SRSettings
from vdvae_jax.train.config import ConfigError

LR_BLOCKS = '4x1,4d4,1x1'          # TINY is 16x16; x4 -> 4x4 LR


def perturbed(params, seed=1, scale=0.05):
  leaves, tree = jax.tree.flatten(params)
  keys = jax.random.split(jax.random.key(seed), len(leaves))
  return jax.tree.unflatten(tree, [l + scale * jax.random.normal(k, l.shape)
                                   for l, k in zip(leaves, keys)])


def images(n, size, seed=0):
  return jnp.asarray(np.random.RandomState(seed).randint(0, 256, (n, size, size, 3)), jnp.uint8)


def test_zero_gates_leave_blocks_below_the_top_unchanged():
  """With every gate at zero, the VDVAE-SR decoder's priors and posteriors of blocks 1..D-1 equal
  the pretrained model's exactly, given the same top block (its input g_0 and conditional prior)."""
  sr = SRSettings(method='vdvae_sr', scale=4, lr_enc_blocks=LR_BLOCKS, condition='depth')
  assert sr.conditioned_blocks(TINY)                 # some blocks are gated
  pre = perturbed(tiny_params())
  params = sr_api.init_params(TINY, sr, jax.random.key(3), pre)
  params = {k: (perturbed(v, 4) if k in ('lr_encoder', 'top_prior') else v)
            for k, v in params.items()}
  assert all(float(params[k]) == 0.0 for k in params if k.startswith('gate_'))
  x, t = preprocess(images(2, 16), TINY)
  y, _ = preprocess(images(2, 4, 1), TINY)
  eps = api.standard_normal_eps(jax.random.key(5), TINY, 2)
  model = sr_api.make_model(TINY, sr)
  out = model.apply({'params': params}, x, t, y, eps)
  # The pretrained VDVAE with only the top block given the same input and prior.
  g = model.apply({'params': params}, y, method=lambda m, y: m.lr_encoder(y))
  top = model.apply({'params': params}, g[1], method=lambda m, a: m.top_prior(a))
  pm0, pv0 = jnp.split(top, 2, axis=-1)
  hooks = DecoderHooks(block_input=lambda i, h: g[1] if i == 0 else h,
                       prior=lambda i, h, pm, pv: (pm0, pv0) if i == 0 else (pm, pv))
  base = VDVAE(TINY).apply({'params': pre}, x, t, eps, hooks)
  for i in range(1, TINY.n_dec_blocks):
    for k in ('pm', 'pv', 'qm', 'qv', 'kl'):
      np.testing.assert_array_equal(out['stats'][i][k], base['stats'][i][k])
  np.testing.assert_array_equal(out['elbo'], base['elbo'])
  # A non-zero gate does change them (the check above can fail).
  j = sr.conditioned_blocks(TINY)[0]
  params2 = dict(params, **{f'gate_{j}': jnp.float32(0.5)})
  out2 = model.apply({'params': params2}, x, t, y, eps)
  assert not np.array_equal(out2['stats'][j]['pm'], base['stats'][j]['pm'])
  # gate_scale s: alpha = s * parameter, so a parameter of 0.125 at s = 4 is the gate 0.5 above.
  scaled = sr_api.make_model(TINY, dataclasses.replace(sr, gate_scale=4.0))
  params4 = dict(params, **{f'gate_{j}': jnp.float32(0.125)})
  out4 = scaled.apply({'params': params4}, x, t, y, eps)
  np.testing.assert_array_equal(out4['stats'][j]['pm'], out2['stats'][j]['pm'])
  with pytest.raises(HParamsError, match='sr.gate_scale must be > 0, got 0.0'):
    sr_api.make_model(TINY, dataclasses.replace(sr, gate_scale=0.0))


def test_trainable_labels_per_method():
  """VDVAE-SR: encoder frozen, decoder fine-tuned ('finetune': sr.finetune_lr_scale times the
  learning rate), new parameters trained; diverse SR: the whole VDVAE frozen."""
  from vdvae_jax.train.tasks import make_task
  from vdvae_jax.train.config import hparams_from_config
  labels = {}
  for method in ('vdvae_sr', 'diverse'):
    sr = SRSettings(method=method, scale=4, lr_enc_blocks=LR_BLOCKS, ky=1)
    params = sr_api.init_params(TINY, sr, jax.random.key(0), tiny_params())
    labels[method] = sr_api.trainable_labels(params, sr)
    new = {k: v for k, v in labels[method].items() if k != 'vdvae'}
    assert new and set(jax.tree.leaves(new)) == {'train'}
    assert set(jax.tree.leaves(labels[method]['vdvae']['encoder'])) == {'freeze'}
  assert set(jax.tree.leaves(labels['vdvae_sr']['vdvae']['decoder'])) == {'finetune'}
  assert set(jax.tree.leaves(labels['diverse']['vdvae']['decoder'])) == {'freeze'}
  c = load_config('div2k_x4')
  c.sr.finetune_lr_scale = 0.25
  assert make_task(c, hparams_from_config(c)).lr_factors == {'finetune': 0.25}
  with pytest.raises(HParamsError, match='sr.finetune_lr_scale must be > 0, got 0.0'):
    SRSettings(method='vdvae_sr', scale=4, lr_enc_blocks=LR_BLOCKS,
               finetune_lr_scale=0.0).validate(TINY)


# Per-channel gates: the [n_blocks, w] gate tables (scalar gates are the same code with [n_blocks]).
@pytest.mark.parametrize('gate', ['channel'])
def test_vdvae_sr_scanned_decoder_is_the_same_function(gate, monkeypatch):
  """Under scan_blocks + remat the hooked posterior pass keeps its scanned runs (the hooks take
  the block index traced): same conditional ELBO and gradients as the unrolled pass, with
  non-zero gates and a top block inside a run of two, held pre-stacked (model/layout.py)."""
  from vdvae_jax.model.layout import stack_runs, unstack_runs
  from vdvae_jax.model.decoder import Decoder
  hps = TINY.replace(dec_blocks='1x2,4m1,4x2,8m4,8x1,16m8,16x1')
  sr = SRSettings(method='vdvae_sr', scale=4, lr_enc_blocks=LR_BLOCKS, condition='depth',
                  gate=gate)
  assert len(sr.conditioned_blocks(hps)) >= 2
  params = perturbed(sr_api.init_params(hps, sr, jax.random.key(3)), seed=4, scale=0.1)
  batch = {'image': images(2, 16), 'lr': images(2, 4, 1)}
  hooked_scans = []
  orig = Decoder._scan_posterior
  monkeypatch.setattr(Decoder, '_scan_posterior', lambda self, *a: (
      hooked_scans.append(a[-1] is not None), orig(self, *a))[1])
  out = {}
  for name, h in (('unrolled', hps),
                  ('scanned', hps.replace(scan_blocks=True, remat=True, conv_impl='custom_vjp'))):
    # the scanned pass with its runs pre-stacked, as the training loop holds them
    p = stack_runs(params, sr_api.scan_layout(h, sr))
    (loss, _), g = jax.jit(jax.value_and_grad(sr_api.sr_loss(h, sr), has_aux=True))(
        p, batch, jax.random.key(0))
    out[name] = (loss, unstack_runs(g))
  assert 'dec_blocks_0_to_1' in p['vdvae']['decoder']
  assert hooked_scans and all(hooked_scans)     # every run of the conditional pass was a scan
  np.testing.assert_allclose(out['scanned'][0], out['unrolled'][0], rtol=1e-6)
  ga, gb = jax.tree.leaves(out['scanned'][1]), jax.tree.leaves(out['unrolled'][1])
  for a, b in zip(ga, gb):
    assert np.max(np.abs(a - b)) <= 1e-4 * np.max(np.abs(b)) + 1e-9
  assert all(np.any(out['scanned'][1][k] != 0) for k in out['scanned'][1] if k.startswith('gate_'))


def test_diverse_with_ky_zero_is_the_prior_sampler():
  sr = SRSettings(method='diverse', scale=4, lr_enc_blocks=LR_BLOCKS, ky=0)
  pre = perturbed(tiny_params())
  params = sr_api.init_params(TINY, sr, jax.random.key(3), pre)
  key = jax.random.key(9)
  s = sr_api.super_resolve(params, TINY, sr, images(2, 4), n_samples=1, temperature=0.7,
                           pixels='sample', rng=key)
  k_eps, k_dmol = jax.random.split(key)
  r = TINY.image_size
  from vdvae_jax.model.likelihood import dmol_uniforms
  u_mix, u_log = dmol_uniforms(k_dmol, (2, r, r), TINY.num_mixtures)
  prior = api.sample(pre, TINY, 2, temperature=0.7,
                     eps=api.standard_normal_eps(k_eps, TINY, 2), u_mix=u_mix, u_logistic=u_log)
  np.testing.assert_array_equal(s.image[:, 0], prior.image)
  np.testing.assert_allclose(s.px_z[:, 0], prior.px_z, atol=1e-6)


def test_ky_uses_the_lr_image():
  sr = SRSettings(method='diverse', scale=4, lr_enc_blocks=LR_BLOCKS, ky=3)
  params = perturbed(sr_api.init_params(TINY, sr, jax.random.key(3), tiny_params()))
  key = jax.random.key(9)
  a = sr_api.super_resolve(params, TINY, sr, images(1, 4, 1), n_samples=2, rng=key)
  b = sr_api.super_resolve(params, TINY, sr, images(1, 4, 2), n_samples=2, rng=key)
  assert a.image.shape == (1, 2, 16, 16, 3)
  assert not np.allclose(a.px_z, b.px_z)                 # the LR image matters
  assert not np.array_equal(a.image[0, 0], a.image[0, 1])  # samples differ: diversity


def test_lr_upsample_reaches_every_group():
  """sr.lr_upsample: the LR-encoder reads the LR image bicubically upsampled (here to the HR size),
  so its activations cover every decoder resolution and ky can take all groups."""
  hr_blocks = '16x1,16d2,8x1,8d2,4x1,4d4,1x1'
  sr = SRSettings(method='diverse', scale=4, lr_enc_blocks=hr_blocks, lr_upsample=4,
                  ky=TINY.n_dec_blocks)
  assert sr.max_ky(TINY) == TINY.n_dec_blocks == 7
  with pytest.raises(HParamsError):          # the same blocks on the 4x4 LR image itself
    sr_api.make_model(TINY, dataclasses.replace(sr, lr_upsample=1))
  with pytest.raises(HParamsError, match='sr.lr_upsample 3 must be a divisor of sr.scale 4'):
    sr_api.make_model(TINY, dataclasses.replace(sr, lr_upsample=3))
  y = images(2, 4, 1)
  y_in, _ = preprocess(y, TINY)
  up = lr_encoder_input(y_in, TINY, sr)
  assert up.shape == (2, 16, 16, 3)
  want = jax.image.resize(y_in, (2, 16, 16, 3), 'bicubic')
  np.testing.assert_array_equal(up, want)
  assert lr_encoder_input(y_in, TINY, dataclasses.replace(sr, lr_upsample=1)) is y_in
  half = dataclasses.replace(sr, lr_upsample=2, lr_enc_blocks='8x1,8d2,4x1,4d4,1x1', ky=5)
  assert half.max_ky(TINY) == 5                         # reaches 8x8, not 16x16
  assert lr_encoder_input(y_in, TINY, half).shape == (2, 8, 8, 3)
  params = perturbed(sr_api.init_params(TINY, sr, jax.random.key(3), tiny_params()))
  assert f'heads_{TINY.n_dec_blocks - 1}' in params      # a q_psi head on the last group
  key = jax.random.key(9)
  a = sr_api.super_resolve(params, TINY, sr, y[:1], n_samples=2, rng=key)
  b = sr_api.super_resolve(params, TINY, sr, y[1:], n_samples=2, rng=key)
  assert a.image.shape == (1, 2, 16, 16, 3)
  assert not np.allclose(a.px_z, b.px_z)


def test_bad_input_errors():
  sr = SRSettings(method='diverse', scale=4, lr_enc_blocks=LR_BLOCKS, ky=3)
  params = sr_api.init_params(TINY, sr, jax.random.key(3), tiny_params())
  with pytest.raises(ValueError, match=r'does not fit the model: x4 of 16x16 needs \[B, 4, 4, 3\]'):
    sr_api.super_resolve(params, TINY, sr, images(1, 5), rng=jax.random.key(0))
  with pytest.raises(HParamsError, match=r"sr.ky = 9 is beyond the LR-encoder's reach"):
    sr_api.make_model(TINY, SRSettings(method='diverse', scale=4, lr_enc_blocks=LR_BLOCKS, ky=9))
  with pytest.raises(HParamsError, match='pretrained VDVAE does not have the architecture'):
    sr_api.init_params(TINY, sr, jax.random.key(0),
                       api.init_params(TINY.replace(width=8, custom_width_str=''),
                                       jax.random.key(0)))


def load_config(name, arg='tiny'):
  return load_config_file(str(ref.REPO / 'configs' / f'{name}.py'), arg)


@pytest.fixture(scope='module')
def pretrained_demo_vdvae(tmp_path_factory):
  """A small VDVAE trained briefly on the demo photographs (the SR runs start from it)."""
  from vdvae_jax.train import train_and_evaluate
  wd = tmp_path_factory.mktemp('vdvae')
  c = load_config('demo', 'tiny')
  c.model.update(dict(lr=4e-3, ema_rate=0.9))
  c.train.update(dict(steps=150, eval_every=1000, sample_every=1000, checkpoint_every=150))
  train_and_evaluate(c, str(wd))
  return str(wd / 'pretrained')


@pytest.mark.slow(seconds=75)
@pytest.mark.parametrize('name', ['div2k_x4', 'ffhq_x8'])
def test_trains_end_to_end_on_demo_data(name, pretrained_demo_vdvae, tmp_path):
  """Loss falls and LR-consistency rises; frozen parameters do not move."""
  from vdvae_jax.model.checkpoint import load_pretrained
  from vdvae_jax.train import train_and_evaluate
  c = load_config(name)
  c.init_from = pretrained_demo_vdvae
  c.model.dataset = 'cifar10'          # the demo VDVAE's conventions (8-bit targets)
  c.train.update(dict(steps=60, log_every=10, eval_every=1000, sample_every=60,
                      checkpoint_every=60, batch_size=4))
  c.model.lr = 4e-3
  # Samples at t = 1: diverse SR then draws its LR-predicted groups from q_psi itself (the
  # temperature scales every group), so what the LR-encoder learnt shows at this tiny scale.
  c.sr.eval_temperature = 1.0
  initial = eval_metrics(c, None)
  state = train_and_evaluate(c, str(tmp_path))
  final = eval_metrics(c, state.params)
  logged = [json.loads(l) for l in open(tmp_path / 'metrics.jsonl')]
  losses = [r['train/loss'] for r in logged if 'train/loss' in r]
  assert losses[-1] < losses[0], losses
  assert final['lr_psnr'] > initial['lr_psnr'] + 0.5, (initial, final)
  pre, _ = load_pretrained(pretrained_demo_vdvae)
  frozen = ['encoder'] if c.sr.method == 'vdvae_sr' else ['encoder', 'decoder']
  for part in frozen:
    for a, b in zip(jax.tree.leaves(state.params['vdvae'][part]), jax.tree.leaves(pre[part])):
      np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  if c.sr.method == 'vdvae_sr':   # the decoder is fine-tuned
    assert any(not np.array_equal(np.asarray(a), np.asarray(b)) for a, b in
               zip(jax.tree.leaves(state.params['vdvae']['decoder']),
                   jax.tree.leaves(pre['decoder'])))


def eval_metrics(config, params):
  """Eval metrics of `params` (None: the initial SR parameters) on 2 eval batches."""
  from vdvae_jax.train import parallel
  from vdvae_jax.train.config import hparams_from_config
  from vdvae_jax.train.loop import evaluate, make_loaders
  from vdvae_jax.train.tasks import make_task
  hps = hparams_from_config(config)
  task = make_task(config, hps)
  mesh = parallel.make_mesh()
  _, eval_loader = make_loaders(config, hps, mesh, config.seed, task)
  if params is None:
    params = task.init_params(jax.random.split(jax.random.PRNGKey(config.seed), 3)[0])
  return evaluate(params, eval_loader, jax.jit(task.eval_fn), mesh, 2, 0)


def test_config_errors(tmp_path, pretrained_demo_vdvae):
  from vdvae_jax.train import train_and_evaluate
  c = load_config('ffhq_x8')
  c.sr.ky = 50
  with pytest.raises(ConfigError, match="config.sr: sr.ky = 50 is beyond the LR-encoder's reach"):
    train_and_evaluate(c, str(tmp_path / 'a'))
  c = load_config('div2k_x4')
  c.model.width = 32
  c.init_from = pretrained_demo_vdvae
  with pytest.raises(ConfigError, match='init_from.*architecture differs'):
    train_and_evaluate(c, str(tmp_path / 'b'))


def test_truncated_posterior_pass_gives_the_top_blocks_stats():
  """Decoder(n_blocks=k), which diverse SR's loss runs, computes the same stats for blocks < k
  as the full posterior pass (it only skips the blocks below)."""
  params = perturbed(tiny_params())
  x, _ = preprocess(images(2, 16), TINY)
  eps = api.standard_normal_eps(jax.random.key(2), TINY, 2)

  def top(m, x, n):
    return m.decoder(m.encoder(x), eps, n_blocks=n)
  k = 3
  px_z, part = VDVAE(TINY).apply({'params': params}, x, k, method=top)
  full_px, full = VDVAE(TINY).apply({'params': params}, x, None, method=top)
  assert px_z is None and full_px is not None and len(part) == k < len(full)
  for a, b in zip(part, full[:k]):
    for key in ('z', 'kl', 'qm', 'qv', 'pm', 'pv', 'x_in'):
      np.testing.assert_array_equal(a[key], b[key])
