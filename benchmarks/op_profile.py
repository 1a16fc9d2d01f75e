"""Where a jitted step spends its time: XLA's per-operation trace of one call, summarised.

  python benchmarks/op_profile.py --preset ffhq256 --batch 1 --case train --scan --remat \
      --conv_impl custom_vjp --top 25

Compiles the case of benchmarks/benchmark.py, runs it once to warm up, then once under
jax.profiler with a Perfetto trace. XLA:CPU records one event per executed operation (thunk),
each loop iteration separately; the summary takes each event's self time (its duration minus
the events nested in it on the same thread), groups the operations by what they compute
(convolution, matmul, copy/transpose, reduction, elementwise, loop control) and by kind (the
fusion's name without its number, e.g. all `multiply_erf_fusion`s), and lists the operations
that took longest with their HLO output shape. Times are summed over threads, so on
a machine running operations concurrently the total can exceed the step's wall time.
"""
from __future__ import annotations

import argparse
import collections
import glob
import gzip
import json
import os
import re
import sys
import tempfile
import time
from typing import Optional, Sequence

_INSTR = re.compile(r'^\s*(?:ROOT\s+)?%?([\w.\-]+) = (\S+(?: \S+)*?) ([a-z][\w\-]*)\((.*)$')
_COMP = re.compile(r'^\s*(?:ENTRY\s+)?%?([\w.\-]+) (?:\(.*\) -> .*)?\{\s*$')
_CALLS = re.compile(r'calls=%?([\w.\-]+)')


def parse_hlo(text: str) -> tuple[dict, dict, dict]:
  """{instruction name: (shape, opcode, calls)}, {computation name: [opcodes]} and
  {computation name: root opcode} of HLO text."""
  instrs, comps, roots, current = {}, collections.defaultdict(list), {}, None
  for line in text.splitlines():
    m = _INSTR.match(line)
    if m:
      name, shape, op, rest = m.groups()
      calls = _CALLS.search(rest)
      instrs[name] = (shape, op, calls.group(1) if calls else None)
      if current is not None:
        comps[current].append(op)
        if line.lstrip().startswith('ROOT'):
          roots[current] = op
      continue
    m = _COMP.match(line)
    if m:
      current = m.group(1)
  return instrs, comps, roots


def category(name: str, hlo: tuple) -> str:
  """What an executed operation computes, from its HLO (or its name when not found): a
  convolution or matmul if its fusion holds one, else by the fusion's root operation."""
  instrs, comps, roots = hlo
  shape, op, calls = instrs.get(name, (None, name.split('.')[0], None))
  ops = set(comps.get(calls, ())) | {op}
  root = roots.get(calls, op)
  if 'convolution' in ops:
    return 'convolution'
  if 'dot' in ops or 'ynn' in name:
    return 'matmul / library fusion'
  if op in ('while', 'conditional', 'call'):
    return 'loop control'
  if root in ('transpose', 'copy') or name.startswith(('copy', 'transpose')):
    return 'copy / transpose'
  if root in ('dynamic-update-slice', 'dynamic-slice', 'slice', 'concatenate', 'pad'):
    return 'slice / pad / update / concat'
  if root == 'reduce' or 'reduce' in ops:
    return 'reduction'
  return 'elementwise'


def self_times(events: list) -> dict:
  """{name: [self time us, count]} of complete ('X') events, nested events subtracted."""
  by_thread = collections.defaultdict(list)
  for e in events:
    if e.get('ph') == 'X' and 'dur' in e:
      by_thread[(e.get('pid'), e.get('tid'))].append(e)
  out = collections.defaultdict(lambda: [0.0, 0])
  for evs in by_thread.values():
    evs.sort(key=lambda e: (e['ts'], -e['dur']))
    stack = []                                    # [end, name, child time]
    def close(item):
      end, name, child, dur = item
      out[name][0] += dur - child
      out[name][1] += 1
      if stack:
        stack[-1][2] += dur
    for e in evs:
      while stack and stack[-1][0] <= e['ts']:
        close(stack.pop())
      stack.append([e['ts'] + e['dur'], e['name'], 0.0, e['dur']])
    while stack:
      close(stack.pop())
  return out


def summarise(trace_dir: str, hlo_text: str, top: int) -> dict:
  path = sorted(glob.glob(os.path.join(trace_dir, '**', 'perfetto_trace.json.gz'),
                          recursive=True))[-1]
  with gzip.open(path) as f:
    data = json.load(f)
  events = data['traceEvents'] if isinstance(data, dict) else data
  hlo = parse_hlo(hlo_text)
  instrs = hlo[0]
  times = {n: v for n, v in self_times(events).items() if n in instrs or 'fusion' in n
           or n.split('.')[0] in ('while', 'dot', 'convolution', 'copy', 'transpose')}
  total = sum(v[0] for v in times.values())
  cats = collections.defaultdict(float)
  for n, (t, _) in times.items():
    cats[category(n, hlo)] += t
  print(f'operation time summed over threads: {total / 1e6:.2f} s')
  for c, t in sorted(cats.items(), key=lambda kv: -kv[1]):
    print(f'  {c:24s} {t / 1e6:8.2f} s {100 * t / max(total, 1):5.1f}%')
  kinds = collections.defaultdict(lambda: [0.0, 0])    # fusion kind: name without its number
  for n, (t, count) in times.items():
    kind = re.sub(r'\.\d+$', '', n)
    kinds[kind][0] += t
    kinds[kind][1] += count
  print(f'\n{"operation kind":40s} {"calls":>6s} {"self s":>8s} {"%":>5s}')
  for kind, (t, count) in sorted(kinds.items(), key=lambda kv: -kv[1][0])[:top]:
    print(f'{kind[:40]:40s} {count:6d} {t / 1e6:8.3f} {100 * t / max(total, 1):5.1f}')
  print(f'\n{"operation":40s} {"calls":>6s} {"self s":>8s} {"%":>5s}  category, HLO output')
  rows = sorted(times.items(), key=lambda kv: -kv[1][0])[:top]
  for n, (t, count) in rows:
    shape = instrs.get(n, ('?',))[0]
    print(f'{n[:40]:40s} {count:6d} {t / 1e6:8.3f} {100 * t / max(total, 1):5.1f}  '
          f'{category(n, hlo)}, {shape[:70]}')
  return dict(total_s=total / 1e6, categories_s={c: t / 1e6 for c, t in cats.items()},
              kinds_s={k: t / 1e6 for k, (t, _) in kinds.items()},
              top=[dict(name=n, calls=c, self_s=t / 1e6, hlo_shape=instrs.get(n, ('?',))[0])
                   for n, (t, c) in rows])


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
  """The command line (sys.argv[1:] by default); an unknown flag exits with status 2."""
  from vdvae_jax.hparams import CONV_IMPLS, REMAT_POLICIES
  ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
  ap.add_argument('--preset', default='ffhq256')
  ap.add_argument('--batch', type=int, default=1)
  ap.add_argument('--case', default='train', choices=('train', 'elbo', 'sample'))
  ap.add_argument('--temperature', type=float, default=0.8)
  ap.add_argument('--remat', action='store_true')
  ap.add_argument('--remat_policy', default='recompute_all', choices=REMAT_POLICIES)
  ap.add_argument('--scan', action='store_true')
  ap.add_argument('--conv_impl', default='lax', choices=CONV_IMPLS)
  ap.add_argument('--config', default='', help='a training config: profile its task (train)')
  ap.add_argument('--top', type=int, default=25, help='how many operations to list')
  ap.add_argument('--json', default='')
  return ap.parse_args(argv)


def main():
  import jax
  sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
  from benchmark import build_case
  args = parse_args()

  compute = dict(remat=args.remat, scan_blocks=args.scan, conv_impl=args.conv_impl,
                 remat_policy=args.remat_policy)
  _, fn, fargs, call, advance, _ = build_case(args.case, args.preset, args.batch,
                                              args.temperature, compute, args.config)
  t0 = time.perf_counter()
  compiled = fn.lower(*fargs).compile()
  print(f'compiled in {time.perf_counter() - t0:.1f} s')
  out = call(compiled, fargs)                        # warm-up
  jax.block_until_ready(out)
  fargs = advance(fargs, out)
  with tempfile.TemporaryDirectory() as trace_dir:
    with jax.profiler.trace(trace_dir, create_perfetto_trace=True):
      t0 = time.perf_counter()
      jax.block_until_ready(call(compiled, fargs))
      wall = time.perf_counter() - t0
    print(f'profiled step: {wall:.2f} s wall (tracing adds a little)')
    result = summarise(trace_dir, compiled.as_text(), args.top)
  if args.json:
    with open(args.json, 'w') as f:
      json.dump(dict(vars(args), wall_s=wall, **result), f, indent=1)


if __name__ == '__main__':
  main()
