"""The precision options (model/precision.py): float32 is the reference program, bfloat16 compute
keeps the numerically sensitive pieces in float32, training keeps float32 master weights, and
bad names or bfloat16 training parameters are one-line errors."""
import collections
import dataclasses
import json
import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tiny import TINY, tiny_params
from vdvae_jax.data.preprocess import preprocess
from vdvae_jax.hparams import HParams, HParamsError
from vdvae_jax.model import api
from vdvae_jax.model.conv import conv2d
from vdvae_jax.model.gaussian import draw_gaussian, gaussian_analytical_kl
from vdvae_jax.model.likelihood import dmol_log_prob
from vdvae_jax.model.precision import cast, check_master_params, float32
from vdvae_jax.model.vae import VDVAE
from vdvae_jax.train.losses import elbo_loss
from vdvae_jax.train.optimizer import make_optimizer
from vdvae_jax.train.state import TrainState
from vdvae_jax.train.step import make_train_step

REPO = pathlib.Path(__file__).resolve().parents[1]
DEMO = str(REPO / 'configs' / 'demo.py')
BF16 = jnp.bfloat16
SCANNED = dict(scan_blocks=True, remat=True, conv_impl='custom_vjp')
STRUCTURES = {'unrolled_lax': {}, 'scan_custom_vjp': SCANNED,
              'scan_im2col': dict(SCANNED, conv_impl='im2col')}


def images(n=2, seed=0):
  return jnp.asarray(np.random.RandomState(seed).randint(0, 256, (n, 16, 16, 3)), jnp.uint8)


def randomised_params():
  """The official init zeroes the prior's last conv and the biases; perturb every entry."""
  leaves, tree = jax.tree.flatten(tiny_params())
  keys = jax.random.split(jax.random.key(1), len(leaves))
  return jax.tree.unflatten(tree, [a + 0.05 * jax.random.normal(k, a.shape)
                                   for a, k in zip(leaves, keys)])


def optimizer():
  return make_optimizer(lr=1e-3, warmup_iters=0, b1=0.9, b2=0.9, eps=1e-8, wd=0.01,
                        grad_clip=200.0, skip_threshold=400.0)


def loss_and_grad_jaxpr(hps, params):
  f = jax.value_and_grad(elbo_loss(hps), has_aux=True)
  return jax.make_jaxpr(f)(params, {'image': images()}, jax.random.key(0))


def walk(jaxpr, visit):
  """visit(eqn) for every equation, sub-jaxprs (jit, scan, remat, custom_vjp) included."""
  for e in getattr(jaxpr, 'jaxpr', jaxpr).eqns:
    visit(e)
    for p in e.params.values():
      for q in (p if isinstance(p, (list, tuple)) else [p]):
        if hasattr(q, 'eqns') or hasattr(getattr(q, 'jaxpr', None), 'eqns'):
          walk(q, visit)


# -- names, files, errors ------------------------------------------------------------------------


def test_dtype_names_are_checked_in_one_line():
  for field in ('dtype', 'param_dtype'):
    with pytest.raises(HParamsError) as e:
      TINY.replace(**{field: 'float16'})
    assert str(e.value) == (f"{field} must be one of ('float32', 'bfloat16'), got 'float16'")
  from vdvae_jax.train.config import ConfigError, check_config, load_config_file
  c = load_config_file(DEMO, 'tiny')
  c.model.dtype = 'bf16'
  with pytest.raises(ConfigError, match=r"config.model: dtype must be one of .*'bfloat16'"):
    check_config(c)


def test_hparams_hash_json_and_files_without_the_fields(tmp_path):
  hps = TINY.replace(dtype='bfloat16', param_dtype='bfloat16')
  assert hash(hps) != hash(TINY) and hps != TINY       # a distinct jit static argument
  assert HParams.from_dict(json.loads(hps.to_json())) == hps
  old = {k: v for k, v in TINY.to_dict().items() if k not in ('dtype', 'param_dtype')}
  assert HParams.from_dict(old) == TINY and TINY.dtype == TINY.param_dtype == 'float32'
  # A pretrained directory written before the fields existed loads as float32.
  from vdvae_jax.model.checkpoint import load_pretrained, save_pretrained
  d = save_pretrained(str(tmp_path / 'old'), tiny_params(), TINY)
  with open(f'{d}/hparams.json', 'w') as f:
    json.dump(old, f)
  params, loaded = load_pretrained(d)
  assert loaded == TINY
  assert {a.dtype for a in jax.tree.leaves(params)} == {np.dtype(np.float32)}


def test_training_refuses_bfloat16_parameters(tmp_path):
  from vdvae_jax.train import train_and_evaluate
  from vdvae_jax.train.config import ConfigError, load_config_file
  c = load_config_file(DEMO, 'tiny')
  c.model.param_dtype = 'bfloat16'
  with pytest.raises(ConfigError, match='param_dtype.*float32 master weights'):
    train_and_evaluate(c, str(tmp_path / 'w'))
  bf16_params = api.cast_params(tiny_params(), TINY.replace(param_dtype='bfloat16'))
  with pytest.raises(ValueError, match='float32 master parameters'):
    TrainState.create(bf16_params, optimizer(), jax.random.PRNGKey(0))
  check_master_params(tiny_params())                  # float32: fine
  # The command line: one line, exit status 2.
  r = subprocess.run([sys.executable, 'train.py', '--config=configs/demo.py:tiny',
                      f'--workdir={tmp_path}/cli', '--config.model.param_dtype=bfloat16'],
                     capture_output=True, text=True, timeout=300, cwd=REPO)
  assert r.returncode == 2 and 'Traceback' not in r.stderr, r.stderr[-2000:]
  assert r.stderr.strip().count('\n') == 0 and 'master weights' in r.stderr, r.stderr


# -- float32: the reference program -------------------------------------------------------------


@pytest.mark.parametrize('structure', ['unrolled_lax', 'scan_custom_vjp'])
def test_float32_is_the_program_without_the_option(structure):
  """Explicit float32 and an hparams dict without the fields (older files) trace the same ELBO
  and gradient, and the precision casts emit nothing: no float-to-float conversion at all."""
  old = {k: v for k, v in TINY.replace(**STRUCTURES[structure]).to_dict().items()
         if k not in ('dtype', 'param_dtype')}
  implicit = HParams.from_dict(old)
  explicit = HParams.from_dict(dict(old, dtype='float32', param_dtype='float32'))
  params = tiny_params()
  x = jnp.zeros((2, 16, 16, 3))
  eps = api.standard_normal_eps(jax.random.key(1), TINY, 2)

  def elbo_jaxpr(hps):
    return jax.make_jaxpr(lambda p: VDVAE(hps).apply({'params': p}, x, x, eps)['elbo'])(params)

  assert str(elbo_jaxpr(implicit)) == str(elbo_jaxpr(explicit))
  grad = loss_and_grad_jaxpr(explicit, params)
  assert str(loss_and_grad_jaxpr(implicit, params)) == str(grad)
  assert 'bf16' not in str(grad)
  converts = []
  walk(grad, lambda e: converts.append(e) if e.primitive.name == 'convert_element_type'
       and jnp.issubdtype(e.invars[0].aval.dtype, jnp.floating) else None)
  assert not converts, converts[:3]


def test_cast_helpers():
  b, f, d = jnp.ones(2, BF16), jnp.ones(2, jnp.float32), np.ones(2, np.float64)
  assert cast(f, jnp.float32) is f and float32(f) is f and float32(d) is d
  assert float32(b).dtype == jnp.float32 and cast(f, BF16).dtype == BF16
  assert cast(jnp.ones(2, jnp.int32), BF16).dtype == jnp.int32


# -- bfloat16 compute ---------------------------------------------------------------------------


def test_bf16_sensitive_pieces_are_float32():
  hps = TINY.replace(dtype='bfloat16')
  x, t = preprocess(images(), hps)
  eps = api.standard_normal_eps(jax.random.key(1), hps, 2)
  out = jax.jit(lambda p: VDVAE(hps).apply({'params': p}, x, t, eps))(randomised_params())
  assert out['px_z'].dtype == BF16                              # the network computes in bf16
  assert all(s['x'].dtype == s['x_in'].dtype == BF16 for s in out['stats'])
  for k in ('elbo', 'distortion', 'rate', 'bits_per_dim', 'kl_per_block', 'dmol_params'):
    assert out[k].dtype == jnp.float32, k
  for s in out['stats']:
    for k in ('kl', 'qm', 'qv', 'pm', 'pv', 'z'):
      assert s[k].dtype == jnp.float32, k
  # The functions themselves cast bf16 arguments up.
  a = jnp.full((2, 3), 0.3, BF16)
  assert gaussian_analytical_kl(a, a, a, a).dtype == jnp.float32
  assert draw_gaussian(a, a, a).dtype == jnp.float32
  assert dmol_log_prob(t, out['dmol_params'].astype(BF16), low_bit=False).dtype == jnp.float32


# Primitives allowed to produce bfloat16 values: linear algebra, additions and products, data
# movement, casts and the structural wrappers. No exp, log, erf, tanh, sigmoid, division, max or
# large reduction ever runs in bfloat16.
BF16_OK = {'conv_general_dilated', 'dot_general', 'add', 'add_any', 'mul', 'convert_element_type',
           'broadcast_in_dim', 'reshape', 'squeeze', 'expand_dims', 'transpose', 'rev', 'slice',
           'dynamic_slice', 'dynamic_update_slice', 'pad', 'concatenate', 'split', 'select_n',
           'copy', 'copy_p', 'name', 'jit', 'pjit', 'custom_vjp_call', 'custom_jvp_call',
           'remat2', 'checkpoint', 'scan', 'while', 'reduce_sum'}


@pytest.mark.parametrize('structure', list(STRUCTURES))
def test_bf16_only_linear_algebra_and_data_movement_in_bf16(structure):
  hps = TINY.replace(dtype='bfloat16', **STRUCTURES[structure])
  found = collections.defaultdict(list)

  def visit(e):
    if any(getattr(v.aval, 'dtype', None) == BF16 for v in e.outvars):
      found[e.primitive.name].append(e)
  walk(loss_and_grad_jaxpr(hps, tiny_params()), visit)
  assert {'conv_general_dilated', 'dot_general'} <= set(found)
  assert set(found) <= BF16_OK, sorted(set(found) - BF16_OK)
  # bf16 sums only where nearest upsampling (the mix-in) is transposed: factor^2 <= 16 terms.
  # Bias, gain and gate gradients sum over B, H, W in float32 (precision.broadcast_param).
  for e in found['reduce_sum']:
    n = int(np.prod([e.invars[0].aval.shape[a] for a in e.params['axes']]))
    assert n <= 16, (e.invars[0].aval, e.params['axes'])


@pytest.mark.parametrize('structure', ['unrolled_lax', 'scan_custom_vjp'])
def test_bf16_train_state_is_float32(structure):
  hps = TINY.replace(dtype='bfloat16', **STRUCTURES[structure])
  from vdvae_jax.model.layout import stack_runs
  from vdvae_jax.model.vae import scan_layout
  params = stack_runs(jax.device_get(randomised_params()), scan_layout(hps))
  tx = optimizer()
  state = TrainState.create(params, tx, jax.random.PRNGKey(0))
  batch = {'image': images()}
  (loss, _), grads = jax.eval_shape(jax.value_and_grad(elbo_loss(hps), has_aux=True),
                                    state.params, batch, jax.random.key(0))
  assert loss.dtype == jnp.float32
  assert {a.dtype for a in jax.tree.leaves(grads)} == {np.dtype(np.float32)}
  step = jax.jit(make_train_step(elbo_loss(hps), tx, 0.999))
  new, m = step(state, batch)
  for part in (new.params, new.opt_state, new.ema_params):
    assert {a.dtype for a in jax.tree.leaves(part) if jnp.issubdtype(a.dtype, jnp.floating)} \
        == {np.dtype(np.float32)}
  assert m['loss'].dtype == m['grad_norm'].dtype == jnp.float32 and not bool(m['skipped'])
  # Close to the float32 step.
  _, m32 = jax.jit(make_train_step(elbo_loss(hps.replace(dtype='float32')), tx, 0.999))(
      state, batch)
  np.testing.assert_allclose(m['loss'], m32['loss'], rtol=1e-3)
  np.testing.assert_allclose(m['grad_norm'], m32['grad_norm'], rtol=3e-2)


@pytest.mark.parametrize('impl', ['lax', 'im2col', 'custom_vjp'])
def test_bf16_conv_formulations_match_float32(impl):
  kx, kk, kg = jax.random.split(jax.random.key(0), 3)
  x = jax.random.normal(kx, (2, 8, 8, 16))
  kernel = jax.random.normal(kk, (3, 3, 16, 8)) / 12
  dy = jax.random.normal(kg, (2, 8, 8, 8))
  y32, vjp32 = jax.vjp(lambda a, k: conv2d(a, k, 'lax'), x, kernel)
  y, vjp = jax.vjp(lambda a, k: conv2d(a, k, impl), x.astype(BF16), kernel.astype(BF16))
  assert y.dtype == BF16
  np.testing.assert_allclose(np.float32(y), y32, atol=2e-2 * np.abs(y32).max())
  for g, g32 in zip(vjp(dy.astype(BF16)), vjp32(dy)):
    assert g.dtype == BF16
    np.testing.assert_allclose(np.float32(g), g32, atol=2e-2 * np.abs(g32).max())


def test_bf16_inference_with_bf16_parameters():
  """ELBO, encoding and sampling with parameters stored in bf16 (cast_params): close to float32."""
  params32 = randomised_params()
  hps = TINY.replace(dtype='bfloat16', param_dtype='bfloat16')
  params = api.cast_params(params32, hps)
  assert {a.dtype for a in jax.tree.leaves(params)} == {np.dtype(BF16)}
  assert {a.dtype for a in jax.tree.leaves(api.init_params(hps, jax.random.key(0)))} \
      == {np.dtype(BF16)}
  x, t = preprocess(images(), hps)
  key = jax.random.key(3)
  ref = api.elbo(params32, TINY, x, t, rng=key)
  out = api.elbo(params, hps, x, t, rng=key)
  assert out.elbo.dtype == jnp.float32
  np.testing.assert_allclose(out.elbo, ref.elbo, rtol=1e-2)
  s = api.sample(params, hps, 2, temperature=0.5, rng=key, pixels='mean')
  s32 = api.sample(params32, TINY, 2, temperature=0.5, rng=key, pixels='mean')
  assert s.x.dtype == jnp.float32 and s.px_z.dtype == BF16
  assert np.abs(np.float32(s.x) - s32.x).mean() < 0.05


def test_bf16_parameters_in_scanned_runs():
  """bf16 parameters under scan_blocks (runs pre-stacked, as eval.py holds them) give the ELBO of
  the unrolled structure: the runs are sliced as 16-bit integers inside the loop (model/scan.py),
  the same values."""
  from vdvae_jax.model.layout import stack_runs
  from vdvae_jax.model.vae import scan_layout
  runs = TINY.replace(enc_blocks='16x2,16d2,8x2,8d2,4x1,4d4,1x1',
                      dec_blocks='1x2,4m1,4x2,8m4,8x1,16m8,16x2', dtype='bfloat16',
                      param_dtype='bfloat16')
  params = api.cast_params(api.init_params(runs.replace(param_dtype='float32'),
                                           jax.random.key(0)), runs)
  scanned = runs.replace(**SCANNED)
  stacked = stack_runs(jax.device_get(params), scan_layout(scanned))
  assert 'dec_blocks_0_to_1' in stacked['decoder']
  x, t = preprocess(images(), runs)
  eps = api.standard_normal_eps(jax.random.key(1), runs, 2)
  a = api.elbo(params, runs, x, t, eps=eps)
  b = api.elbo(stacked, scanned, x, t, eps=eps)
  np.testing.assert_allclose(b.elbo, a.elbo, rtol=1e-3)
  jaxpr = str(jax.make_jaxpr(lambda p: api._elbo(scanned, p, x, t, eps))(stacked))
  assert 'bitcast_convert_type' in jaxpr and 'optimization_barrier' in jaxpr


@pytest.mark.parametrize('method', ['vdvae_sr', 'diverse'])
def test_bf16_super_resolution(method):
  """SR losses (VDVAE-SR's conditional pass scanned) and sampling in bf16, close to float32."""
  from vdvae_jax.sr import api as sr_api
  from vdvae_jax.sr.settings import SRSettings
  sr = SRSettings(method=method, scale=2, lr_enc_blocks='8x1,8d2,4x1,4d4,1x1', ky=2)
  hps32 = TINY.replace(**SCANNED) if method == 'vdvae_sr' else TINY
  hps = hps32.replace(dtype='bfloat16')
  params = sr_api.init_params(hps32, sr, jax.random.key(0), randomised_params())
  keys = iter(jax.random.split(jax.random.key(2), 1000))     # new parts perturbed: gates and
  params = {k: v if k == 'vdvae' else jax.tree.map(           # the top prior not at zero
      lambda a: a + 0.05 * jax.random.normal(next(keys), a.shape), v) for k, v in params.items()}
  batch = {'image': images(), 'lr': images()[:, ::2, ::2]}
  key = jax.random.key(1)
  loss, _ = jax.jit(sr_api.sr_loss(hps, sr))(params, batch, key)
  loss32, _ = jax.jit(sr_api.sr_loss(hps32, sr))(params, batch, key)
  assert loss.dtype == jnp.float32
  np.testing.assert_allclose(loss, loss32, rtol=1e-2)
  s = sr_api.super_resolve(api.cast_params(params, hps.replace(param_dtype='bfloat16')),
                           hps.replace(param_dtype='bfloat16'), sr, batch['lr'],
                           temperature=0.5, rng=key)
  assert s.image.shape == (2, 1, 16, 16, 3)


def test_benchmark_cases_at_each_precision():
  """benchmarks/benchmark.py: ELBO and sampling run with bf16 compute and parameters; the train
  step takes bf16 compute with a float32 state (traced only: its compilation is test_compute's);
  unknown dtype names are refused."""
  sys.path.insert(0, str(REPO / 'benchmarks'))
  from benchmark import build_case, parse_args
  small = dict(width=16, zdim=4, num_mixtures=3, custom_width_str='', image_size=32,
               enc_blocks='32x1,32d2,16x1,16d2,8x1,8d4,2x1', dec_blocks='2x1,8m2,16m8,32m16')
  for case, param_dtype in (('elbo', 'bfloat16'), ('sample', 'bfloat16'), ('train', 'float32')):
    compute = dict(small, dtype='bfloat16', param_dtype=param_dtype)
    _, fn, args, call, _, hps = build_case(case, 'cifar10', 1, 1.0, compute)
    assert hps.dtype == 'bfloat16'
    params = args[0].params if case == 'train' else args[0]
    assert {a.dtype for a in jax.tree.leaves(params)} == {np.dtype(param_dtype)}
    if case == 'train':
      assert 'bf16' in fn.lower(*args).as_text()
      continue
    out = call(fn, args)
    assert np.all(np.isfinite(np.float32(out['elbo'] if case == 'elbo' else out.x)))
  ns = parse_args(['--dtype', 'float32,bfloat16', '--param_dtype', 'bfloat16'])
  assert ns.dtype == ['float32', 'bfloat16'] and ns.param_dtype == ['bfloat16']
  with pytest.raises(SystemExit):
    parse_args(['--dtype', 'float16'])


def test_dataclass_fields_are_compute_options():
  """dtype and param_dtype are not architecture: checkpoints load across them."""
  from vdvae_jax.hparams import ARCHITECTURE_FIELDS
  names = {f.name for f in dataclasses.fields(HParams)}
  assert {'dtype', 'param_dtype'} <= names
  assert not {'dtype', 'param_dtype'} & set(ARCHITECTURE_FIELDS)
