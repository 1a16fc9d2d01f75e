"""Benchmark the jitted core: training step, ELBO evaluation and unconditional sampling.

  python benchmarks/benchmark.py --preset ffhq256 --batch 1
  python benchmarks/benchmark.py --preset imagenet32 --batch 8 --cases train --json out.json
  python benchmarks/benchmark.py --config configs/div2k_x4.py --cases train --scan --remat \
      --conv_impl custom_vjp          # the train step of a config's task (here VDVAE-SR)
  python benchmarks/benchmark.py --preset ffhq256 --cases elbo,sample --dtype float32,bfloat16 \
      --param_dtype float32,bfloat16  # each case at each precision, side by side

--dtype / --param_dtype (comma-separated lists; model/precision.py) run every case at each
combination of compute and parameter dtype; train with bfloat16 parameters is skipped (training
keeps float32 master weights).

Each case runs in two processes: one compiles it (trace + lower + compile time, its peak RSS,
XLA's buffer sizes) and fills a temporary JAX compilation cache; the other loads the program
from that cache and runs it (median time of the timed calls after warm-up, peak RSS of the
whole process: Python, JAX, inputs, state and the step). Also reported: the matmul and
convolution FLOPs of one call, counted on the jaxpr (benchmarks/flops.py; XLA's cost analysis
counts a loop body once), and the achieved FLOP/s against a measured float32 matmul peak of
this machine. The script first checks that the machine is idle (CPU time used over 2 s, from
/proc/stat) and says so when it is not. Random initialisation, random images. Both processes
return freed host memory to the OS after initialising and after compiling or loading the
program, as the training loop does (vdvae_jax/train/host_memory.py).

Reference (official PyTorch code, this 2-core CPU, medians): ffhq256 batch 1 train 26.9 s (22-28),
ELBO 7.9 s, sample 3.4 s; imagenet32 batch 8 train 17.8 s; cifar10 batch 16 train 11.7 s, ELBO 4.3 s.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from typing import Optional, Sequence

REFERENCE_S = {('ffhq256', 1, 'train'): 26.9, ('ffhq256', 1, 'elbo'): 7.89,
               ('ffhq256', 1, 'sample'): 3.36, ('imagenet32', 8, 'train'): 17.8,
               ('cifar10', 16, 'train'): 11.7, ('cifar10', 16, 'elbo'): 4.26}
REFERENCE_GIB = {('ffhq256', 1, 'train'): 13.7, ('ffhq256', 1, 'elbo'): 2.4,
                 ('ffhq256', 1, 'sample'): 1.7, ('imagenet32', 8, 'train'): 14.0,
                 ('cifar10', 16, 'train'): 10.7, ('cifar10', 16, 'elbo'): 0.9}


SHORT = {'float32': 'f32', 'bfloat16': 'bf16'}


def peak_rss_gib() -> float:
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def cpu_busy_fraction(seconds: float = 2.0):
  """Fraction of all CPU time spent busy (not idle or waiting on I/O) over `seconds`, from
  /proc/stat; None where that file does not exist."""
  def sample():
    with open('/proc/stat') as f:
      v = [int(t) for t in f.readline().split()[1:]]
    return sum(v), v[3] + v[4]                     # total, idle + iowait
  try:
    t0, i0 = sample()
    time.sleep(seconds)
    t1, i1 = sample()
  except OSError:
    return None
  return 1.0 - (i1 - i0) / max(t1 - t0, 1)


def matmul_peak_flops(n: int = 2048, repeats: int = 5) -> float:
  import jax
  import jax.numpy as jnp
  a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
  f = jax.jit(lambda x: x @ x)
  f(a).block_until_ready()
  best = float('inf')
  for _ in range(repeats):
    t0 = time.perf_counter()
    f(a).block_until_ready()
    best = min(best, time.perf_counter() - t0)
  return 2 * n**3 / best


def build_case(case: str, preset: str, batch: int, temperature: float, compute: dict,
               config_path: str = ''):
  """The jitted function of one case and its arguments: (raw, fn, args, call, advance, hps);
  call(compiled, args) runs one step, advance(args, out) gives the next step's arguments."""
  import jax
  import jax.numpy as jnp
  import numpy as np

  from vdvae_jax.hparams import get_preset
  from vdvae_jax.model import api
  from vdvae_jax.model.layout import stack_runs
  from vdvae_jax.model.scan import compiler_options
  from vdvae_jax.model.vae import scan_layout
  from vdvae_jax.train.host_memory import release_host_memory
  from vdvae_jax.train.losses import elbo_eval, elbo_loss
  from vdvae_jax.train.optimizer import make_optimizer
  from vdvae_jax.train.state import TrainState
  from vdvae_jax.train.step import make_train_step

  rand = lambda n, r: jnp.asarray(np.random.RandomState(0).randint(  # noqa: E731
      0, 256, (n, r, r, 3)), jnp.uint8)
  if config_path:           # the training task of a config (e.g. an SR model), random init
    if case != 'train':
      raise ValueError('--config: only the train case')
    from vdvae_jax.train.config import hparams_from_config, load_config_file
    from vdvae_jax.train.tasks import make_task
    config = load_config_file(config_path)
    config.model.update(compute)
    hps = hparams_from_config(config)
    task = make_task(config, hps)
    params = task.init_params(jax.random.key(0))
    loss_fn, labels = task.loss_fn, task.labels(params)
    images = rand(batch, hps.image_size)
    data = {'image': images}
    if task.lr_scale:
      data['lr'] = rand(batch, hps.image_size // task.lr_scale)
  else:
    hps = get_preset(preset).replace(**compute)
    params = api.init_params(hps, jax.random.key(0))
    loss_fn, labels = elbo_loss(hps), None
    images = rand(batch, hps.image_size)
    data = {'image': images}
  if case in ('train', 'elbo'):
    # As the training loop and eval.py: scanned runs of blocks held pre-stacked
    # (model/layout.py), stacked on the host (no op-by-op programs), per-block copies dropped.
    layout = task.scan_layout if config_path else scan_layout(hps)
    params = jax.device_put(stack_runs(jax.device_get(params), layout))
    labels = None if labels is None else stack_runs(labels, layout)
  if case == 'train':
    tx = make_optimizer(lr=hps.lr, warmup_iters=hps.warmup_iters, b1=hps.adam_beta1,
                        b2=hps.adam_beta2, eps=hps.adam_eps, wd=hps.wd, grad_clip=hps.grad_clip,
                        skip_threshold=-1, labels=labels)
    state = TrainState.create(params, tx, jax.random.PRNGKey(0))
    raw = make_train_step(loss_fn, tx, hps.ema_rate)
    fn = jax.jit(raw, donate_argnums=0, compiler_options=compiler_options(hps) or None)
    args = (state, data)
    call = lambda c, a: c(*a)  # noqa: E731
    advance = lambda a, out: (out[0], a[1])  # noqa: E731
  elif case == 'elbo':
    raw = elbo_eval(hps)
    fn = jax.jit(raw)
    args = (params, {'image': images}, jax.random.key(1))
    call, advance = (lambda c, a: c(*a)), (lambda a, out: a)
  elif case == 'sample':
    from vdvae_jax.model.api import _sample, _prior_eps, log_temperatures
    from vdvae_jax.model.likelihood import dmol_uniforms
    eps = _prior_eps(hps, batch, 0, jax.random.key(2), None)
    r = hps.image_size
    u = dmol_uniforms(jax.random.key(3), (batch, r, r), hps.num_mixtures)
    raw = lambda p, e, lt, um, ul: _sample(hps, p, batch, [], e, lt, um, ul)  # noqa: E731
    fn = jax.jit(raw)
    args = (params, eps, log_temperatures(hps, temperature), *u)
    call, advance = (lambda c, a: c(*a)), (lambda a, out: a)
  else:
    raise ValueError(case)

  release_host_memory(clear_jax_caches=True)      # as the training loop does after init
  return raw, fn, args, call, advance, hps


def run_case(case: str, preset: str, batch: int, warmup: int, repeats: int,
             temperature: float, remat: bool = False, scan: bool = False,
             conv_impl: str = 'lax', remat_policy: str = 'recompute_all',
             phase: str = 'compile', config_path: str = '', dtype: str = 'float32',
             param_dtype: str = 'float32') -> dict:
  """Measure one case in this process: its compilation (phase 'compile') or its steps, with the
  program loaded from the compilation cache the compile phase filled (phase 'run')."""
  import jax
  import numpy as np

  from vdvae_jax.train.host_memory import release_host_memory

  compute = dict(remat=remat, scan_blocks=scan, conv_impl=conv_impl, remat_policy=remat_policy,
                 dtype=dtype, param_dtype=param_dtype)
  raw, fn, args, call, advance, hps = build_case(case, preset, batch, temperature, compute,
                                                 config_path)
  t0 = time.perf_counter()
  lowered = fn.lower(*args)
  t1 = time.perf_counter()
  compiled = lowered.compile()
  t2 = time.perf_counter()
  release_host_memory()          # the compiler's working memory, as the training loop does
  out = dict(case=case, preset=config_path or preset, batch=batch, remat=remat, remat_policy=remat_policy,
             scan=scan, conv_impl=conv_impl, dtype=dtype, param_dtype=param_dtype,
             jax=jax.__version__, devices=str(jax.devices()))
  if phase == 'compile':
    mem = compiled.memory_analysis()
    cost = compiled.cost_analysis()
    if isinstance(cost, list):
      cost = cost[0] if cost else {}
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from flops import count_flops
    return dict(out, trace_s=t1 - t0, compile_s=t2 - t1, peak_rss_compile_gib=peak_rss_gib(),
                xla_gib={k: getattr(mem, k + '_in_bytes', 0) / 2**30 for k in (
                    'temp_size', 'argument_size', 'output_size', 'alias_size')} if mem else {},
                xla_flops=float(cost.get('flops', float('nan'))) if cost else float('nan'),
                flops=count_flops(raw, *args))    # matmul + conv FLOPs, loops counted in full
  times = []
  for i in range(warmup + repeats):
    s = time.perf_counter()
    res = call(compiled, args)
    jax.block_until_ready(res)
    if i >= warmup:
      times.append(time.perf_counter() - s)
    args = advance(args, res)
  return dict(out, load_s=t2 - t0, median_s=float(np.median(times)), times_s=times,
              peak_rss_run_gib=peak_rss_gib())


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
  """The command line (sys.argv[1:] by default); an unknown flag exits with status 2."""
  from vdvae_jax.hparams import CONV_IMPLS, DTYPES, REMAT_POLICIES

  def dtype_list(s: str) -> list[str]:
    names = [d.strip() for d in s.split(',')]
    bad = [d for d in names if d not in DTYPES]
    if bad:
      raise argparse.ArgumentTypeError(f'{bad[0]!r}: one of {", ".join(DTYPES)}')
    return names
  ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
  ap.add_argument('--preset', default='ffhq256')
  ap.add_argument('--batch', type=int, default=1)
  ap.add_argument('--cases', default='train,elbo,sample')
  ap.add_argument('--warmup', type=int, default=1)
  ap.add_argument('--repeats', type=int, default=3)
  ap.add_argument('--temperature', type=float, default=0.8)
  ap.add_argument('--remat', action='store_true', help='rematerialise every block (less memory)')
  ap.add_argument('--remat_policy', default='recompute_all', choices=REMAT_POLICIES)
  ap.add_argument('--scan', action='store_true', help='scan over runs of identical blocks')
  ap.add_argument('--conv_impl', default='lax', choices=CONV_IMPLS)
  ap.add_argument('--dtype', type=dtype_list, default=['float32'],
                  help=f'compute dtype(s), comma separated: {", ".join(DTYPES)}')
  ap.add_argument('--param_dtype', type=dtype_list, default=['float32'],
                  help='parameter dtype(s), comma separated; bfloat16 for elbo and sample only')
  ap.add_argument('--config', default='',
                  help="a training config file: benchmark its task's train step (e.g. an SR "
                       'model, configs/div2k_x4.py), random init, model from the config')
  ap.add_argument('--json', default='')
  ap.add_argument('--child', default='', help=argparse.SUPPRESS)
  ap.add_argument('--phase', default='compile', help=argparse.SUPPRESS)
  ap.add_argument('--cache_dir', default='', help=argparse.SUPPRESS)
  return ap.parse_args(argv)


def main():
  args = parse_args()

  if args.child:   # one case, one phase, in this process
    import jax
    jax.config.update('jax_compilation_cache_dir', args.cache_dir)
    jax.config.update('jax_persistent_cache_min_compile_time_secs', 0)
    jax.config.update('jax_persistent_cache_min_entry_size_bytes', -1)
    r = run_case(args.child, args.preset, args.batch, args.warmup, args.repeats, args.temperature,
                 args.remat, args.scan, args.conv_impl, args.remat_policy, args.phase,
                 args.config, args.dtype[0], args.param_dtype[0])
    print('RESULT ' + json.dumps(r))
    return

  load = os.getloadavg()[0]
  busy = cpu_busy_fraction()
  # The load average also counts tasks waiting on I/O and decays over a minute (here it read
  # 1.5 with every core idle); the CPU time actually used in the last 2 s decides.
  idle = busy < 0.1 if busy is not None else load < 0.5
  print(f'load average {load:.2f} on {os.cpu_count()} cores, CPU busy over the last 2 s: '
        + (f'{100 * busy:.0f}%' if busy is not None else 'unknown') + ': '
        + ('idle' if idle else 'NOT IDLE -- timings are unreliable'))
  peak = matmul_peak_flops()
  print(f'measured float32 matmul peak: {peak / 1e9:.1f} GFLOP/s')
  results = []
  runs = [(case, d, pd) for case in args.cases.split(',') for d in args.dtype
          for pd in args.param_dtype]
  for case, dtype, param_dtype in runs:
    if case == 'train' and param_dtype != 'float32':
      print(f'train with {param_dtype} parameters: skipped (training keeps float32 master '
            'weights)')
      continue
    cmd = [sys.executable, __file__, '--child', case, '--preset', args.preset, '--batch',
           str(args.batch), '--warmup', str(args.warmup), '--repeats', str(args.repeats),
           '--temperature', str(args.temperature), '--conv_impl', args.conv_impl,
           '--remat_policy', args.remat_policy, '--config', args.config, '--dtype', dtype,
           '--param_dtype', param_dtype] + \
        (['--remat'] if args.remat else []) + (['--scan'] if args.scan else [])
    r = {}
    with tempfile.TemporaryDirectory() as cache:   # compile, then run from the cache it fills
      for phase in ('compile', 'run'):
        p = subprocess.run(cmd + ['--phase', phase, '--cache_dir', cache], capture_output=True,
                           text=True)
        line = [l for l in p.stdout.splitlines() if l.startswith('RESULT ')]
        if p.returncode != 0 or not line:
          why = 'killed (out of memory?)' if p.returncode in (-9, 137) else f'exit {p.returncode}'
          print(f'{case} {dtype}/{param_dtype} ({phase}): failed, {why}\n{p.stderr[-2000:]}')
          break
        r.update(json.loads(line[0][7:]))
    if 'median_s' not in r:
      continue
    r['flops_per_s'] = r['flops'] / r['median_s']
    r['fraction_of_matmul_peak'] = r['flops_per_s'] / peak
    ref_key = (None if args.config else args.preset, args.batch, case)   # presets only
    r['reference_s'] = REFERENCE_S.get(ref_key)
    r['reference_peak_gib'] = REFERENCE_GIB.get(ref_key)
    results.append(r)
  hdr = (f"{'case':7s} {'dtype':>9s} {'compile s':>9s} {'median s':>9s} {'official s':>10s} {'run GiB':>8s} "
         f"{'compile GiB':>11s} {'official GiB':>12s} {'GFLOP':>8s} {'GFLOP/s':>8s} {'% peak':>7s}")
  opts = ', '.join(o for o, on in (('remat', args.remat), (args.remat_policy, args.remat),
                                    ('scan', args.scan),
                                    (args.conv_impl, args.conv_impl != 'lax')) if on)
  print(f'\n{args.config or args.preset}, batch {args.batch}{", " + opts if opts else ""}\nrun GiB: peak RSS of '
        'a process that loads the compiled program from the cache and runs the steps; compile '
        'GiB: of the process that compiles it; dtype: compute/parameters\n' + hdr)
  for r in results:
    ref_s = f"{r['reference_s']:.1f}" if r['reference_s'] else '-'
    ref_g = f"{r['reference_peak_gib']:.1f}" if r['reference_peak_gib'] else '-'
    precision = f"{SHORT[r['dtype']]}/{SHORT[r['param_dtype']]}"
    print(f"{r['case']:7s} {precision:>9s} {r['trace_s'] + r['compile_s']:9.1f} {r['median_s']:9.2f} {ref_s:>10s} "
          f"{r['peak_rss_run_gib']:8.2f} {r['peak_rss_compile_gib']:11.2f} {ref_g:>12s} "
          f"{r['flops'] / 1e9:8.1f} "
          f"{r['flops_per_s'] / 1e9:8.1f} {100 * r['fraction_of_matmul_peak']:6.1f}%")
  out = dict(load_average=load, cpu_busy=busy, idle=idle, matmul_peak_flops=peak,
             date=time.strftime('%Y-%m-%d'),
             results=results)
  if args.json:
    with open(args.json, 'w') as f:
      json.dump(out, f, indent=1)


if __name__ == '__main__':
  main()
