"""The pieces behind the compute options: convolution formulations, the GELU derivative, loops
of one block, compiler options, and the FLOP counter, profiler and cases of benchmarks/."""
import math
import os
import pathlib
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vdvae_jax.hparams import get_preset
from vdvae_jax.model.blocks import Block, Conv2d, gelu
from vdvae_jax.model.conv import conv2d, conv_lax
from vdvae_jax.model.scan import compiler_options, isolate, runs
from vdvae_jax.train.host_memory import ReleasingCompiler, release_host_memory

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / 'benchmarks'))
from flops import count_flops  # noqa: E402
from benchmark import cpu_busy_fraction  # noqa: E402
from op_profile import category, parse_hlo, self_times  # noqa: E402


@pytest.mark.parametrize('impl', ['im2col', 'custom_vjp'])
@pytest.mark.parametrize('shape', [(2, 5, 7, 3, 4), (1, 8, 8, 6, 2)])
def test_conv_formulations_match_lax_values_and_gradients(impl, shape):
  b, h, w, c, d = shape
  kx, kk, kg = jax.random.split(jax.random.key(0), 3)
  x = jax.random.normal(kx, (b, h, w, c))
  kernel = jax.random.normal(kk, (3, 3, c, d))
  dy = jax.random.normal(kg, (b, h, w, d))
  y_ref, vjp_ref = jax.vjp(conv_lax, x, kernel)
  y, vjp = jax.vjp(lambda a, k: conv2d(a, k, impl), x, kernel)
  np.testing.assert_allclose(y, y_ref, rtol=1e-5, atol=1e-5)
  for g, g_ref in zip(vjp(dy), vjp_ref(dy)):
    np.testing.assert_allclose(g, g_ref, rtol=1e-5, atol=1e-4)


def test_conv_rejects_unknown_formulation():
  with pytest.raises(ValueError, match='custom_vjp'):
    conv2d(jnp.zeros((1, 4, 4, 2)), jnp.zeros((3, 3, 2, 2)), 'winograd')


def test_conv_on_parts_is_the_conv_of_their_concatenation():
  """Conv2d([a, b]) (1x1) has the kernel of Conv2d(concat(a, b)) and computes the same function
  and gradients without building the concatenation."""
  ka, kb, kp = jax.random.split(jax.random.key(0), 3)
  a, b = jax.random.normal(ka, (2, 4, 4, 5)), jax.random.normal(kb, (2, 4, 4, 3))
  conv = Conv2d(6, 1)
  params = conv.init(kp, jnp.concatenate([a, b], -1))
  assert jax.tree.map(jnp.shape, conv.init(kp, [a, b])) == jax.tree.map(jnp.shape, params)
  params = jax.tree.map(lambda p: p + 0.1, params)          # a non-zero bias too
  whole = lambda p, a, b: conv.apply(p, jnp.concatenate([a, b], -1))  # noqa: E731
  parts = lambda p, a, b: conv.apply(p, [a, b])  # noqa: E731
  np.testing.assert_allclose(parts(params, a, b), whole(params, a, b), rtol=1e-5, atol=1e-5)
  loss = lambda f: lambda *x: jnp.sum(jnp.sin(f(*x)))  # noqa: E731
  for g, g_ref in zip(jax.grad(loss(parts), (0, 1, 2))(params, a, b),
                      jax.grad(loss(whole), (0, 1, 2))(params, a, b)):
    jax.tree.map(lambda u, v: np.testing.assert_allclose(u, v, rtol=1e-5, atol=1e-5), g, g_ref)
  with pytest.raises(ValueError, match='1x1'):
    Conv2d(6, 3).init(kp, [a, b])
  with pytest.raises(ValueError, match='residual'):
    Block(4, 5, residual=True).init(kp, a, b)


def test_release_host_memory_returns_freed_heap_pages():
  """Memory freed in the middle of glibc's heap goes back to the OS only through malloc_trim."""
  def rss_bytes():
    with open('/proc/self/statm') as f:
      return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')
  if not os.path.exists('/proc/self/statm') or not release_host_memory():
    pytest.skip('needs Linux with glibc')
  keep, junk = [], []
  for i in range(100_000):                      # ~200 MB in 2 KiB malloc chunks
    (keep if i % 16 == 0 else junk).append(bytearray(2048))
  del junk                                      # 15/16 freed, in holes between the kept chunks
  before = rss_bytes()
  release_host_memory()
  assert before - rss_bytes() > 50 * 2**20, (before, rss_bytes())
  del keep


def test_releasing_compiler_compiles_once_per_signature():
  f = jax.jit(lambda x, y: (x * y).sum())
  step = ReleasingCompiler(f)
  a, b = jnp.arange(6.0), jnp.ones(6)
  assert step(a, b) == f(a, b) and step(a + 1, b) == f(a + 1, b)
  assert step.compiles == 1
  assert step(jnp.ones(3), jnp.ones(3)) == 3.0            # a new shape: compiled again
  assert step(jnp.ones(3, jnp.int32), jnp.ones(3, jnp.int32)) == 3
  assert step.compiles == 3
  assert step(a, b) == f(a, b) and step.compiles == 3      # back to the first: no recompile


def test_gelu_is_exact_and_its_derivative_is_phi_plus_x_pdf():
  """Forward: jax's erf GELU bit for bit. Backward: Phi(x) + x phi(x) in float32 with Phi from
  erf, as PyTorch's GeluBackward computes it; checked against float64 (absolute error, since
  1 + erf cancels in the far negative tail for PyTorch too)."""
  x = jnp.linspace(-8.0, 8.0, 2001)
  np.testing.assert_array_equal(gelu(x), jax.nn.gelu(x, approximate=False))
  xd = np.asarray(x, np.float64)
  want = np.array([0.5 * (1 + math.erf(t / math.sqrt(2))) for t in xd]) + \
      xd * np.exp(-0.5 * xd * xd) / math.sqrt(2 * math.pi)
  np.testing.assert_allclose(jax.vmap(jax.grad(gelu))(x), want, rtol=1e-6, atol=2e-7)


def test_runs_and_isolate():
  assert runs([1, 1, 2, 3, 3, 3, None, None]) == [(0, 2), (3, 6)]
  assert runs([1, 1, 2, None], min_len=1) == [(0, 2), (2, 3)]
  params = {'w': jnp.arange(6.0).reshape(2, 3)}
  x = jnp.ones((4, 2))
  for remat in (None, 'recompute_all', 'save_convs'):
    f = lambda p, a, r=remat: isolate(lambda q, b: jnp.tanh(b @ q['w']), p, a, r).sum()  # noqa
    g = jax.grad(f)(params, x)
    g_ref = jax.grad(lambda p, a: jnp.tanh(a @ p['w']).sum())(params, x)
    np.testing.assert_allclose(g['w'], g_ref['w'], rtol=1e-6)


def test_compiler_options_only_for_the_scanned_structure():
  hps = get_preset('cifar10')
  assert compiler_options(hps) == {}
  opts = compiler_options(hps.replace(scan_blocks=True))
  assert opts['xla_disable_hlo_passes'] == 'simplify-while-loops'
  # The options are accepted by the compiler, and the loop of length one survives.
  f = jax.jit(lambda a: isolate(lambda _, b: jnp.sin(b) * 2, None, a, None), compiler_options=opts)
  text = f.lower(jnp.ones(3)).compile().as_text()
  assert ' while(' in text


def test_flop_counter_counts_matmuls_convs_and_loop_bodies():
  a, b = jnp.ones((8, 16)), jnp.ones((16, 4))
  assert count_flops(lambda x, y: x @ y, a, b) == 2 * 8 * 16 * 4
  x, k = jnp.ones((2, 6, 6, 3)), jnp.ones((3, 3, 3, 5))
  assert count_flops(conv_lax, x, k) == 2 * (2 * 6 * 6 * 5) * (3 * 3 * 3)
  scanned = lambda x, y: jax.lax.scan(lambda c, _: (c @ y, None), x, None, length=7)[0]  # noqa
  assert count_flops(scanned, jnp.ones((4, 4)), jnp.ones((4, 4))) == 7 * 2 * 4 * 4 * 4


def test_op_profile_self_times_and_categories():
  """The profile summary subtracts nested events per thread and names what an operation does."""
  events = [dict(ph='X', name='while.1', ts=0, dur=100, pid=1, tid=1),
            dict(ph='X', name='dot.2', ts=10, dur=30, pid=1, tid=1),
            dict(ph='X', name='dot.2', ts=50, dur=20, pid=1, tid=1),
            dict(ph='X', name='dot.2', ts=5, dur=50, pid=1, tid=2),      # another thread
            dict(ph='i', name='marker', ts=1, pid=1, tid=1)]
  t = self_times(events)
  assert t['while.1'] == [50.0, 1] and t['dot.2'] == [100.0, 3]
  f = jax.jit(lambda a, b: jnp.tanh(a @ b).sum(0))
  a = jnp.ones((64, 64))
  hlo = parse_hlo(f.lower(a, a).compile().as_text())
  cats = {category(n, hlo) for n in hlo[0]}
  assert 'matmul / library fusion' in cats or 'convolution' in cats, cats


def test_benchmark_idle_check_sees_a_busy_core():
  """The benchmark's idle check measures CPU time used, not the load average."""
  import subprocess
  spin = subprocess.Popen([sys.executable, '-c', 'while True: pass'])
  try:
    busy = cpu_busy_fraction(1.0)
  finally:
    spin.kill()
    spin.wait()
  if busy is None:
    pytest.skip('no /proc/stat')
  assert 0.5 / os.cpu_count() <= busy <= 1.0, busy     # one core of cpu_count() kept busy


@pytest.mark.parametrize('case', ['train', 'elbo'])
def test_benchmark_cases_hold_stacked_runs_and_run(case):
  """benchmark.build_case on a small cifar10-like model with runs of blocks: the train state and
  the ELBO take the scanned runs pre-stacked (as the training loop and eval.py), and the step
  compiles and runs to a finite loss."""
  from benchmark import build_case
  small = dict(width=16, zdim=4, num_mixtures=3, custom_width_str='', image_size=32,
               enc_blocks='32x2,32d2,16x2,16d2,8x1,8d4,2x1',
               dec_blocks='2x2,8m2,8x2,16m8,32m16,32x2')
  compute = dict(small, scan_blocks=True, remat=True, conv_impl='custom_vjp')
  raw, fn, args, call, advance, hps = build_case(case, 'cifar10', 2, 1.0, compute)
  params = args[0].params if case == 'train' else args[0]
  assert 'dec_blocks_0_to_1' in params['decoder'] and 'enc_blocks_0_to_1' in params['encoder']
  out = call(fn, args)
  loss = out[1]['loss'] if case == 'train' else out['elbo']
  assert np.all(np.isfinite(np.asarray(loss)))
