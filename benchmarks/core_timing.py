"""Time one jitted ELBO evaluation and one unconditional sample of a preset (random init).

  python benchmarks/core_timing.py --preset ffhq256 --batch 1 --temperature 0.8

Prints compile time and median step time; checks the machine load first (the machine is shared).
The official PyTorch code on the 2-core reference CPU: ffhq256 ELBO 7.9 s, sample 3.4 s (batch 1).
"""
import argparse
import json
import os
import resource
import time

import jax
import jax.numpy as jnp
import numpy as np

from vdvae_jax.data.preprocess import preprocess
from vdvae_jax.hparams import get_preset
from vdvae_jax.model import api


def timed(fn, repeats):
  t0 = time.perf_counter()
  jax.block_until_ready(fn())
  first = time.perf_counter() - t0
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    jax.block_until_ready(fn())
    times.append(time.perf_counter() - t0)
  return first, float(np.median(times)), times


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument('--preset', default='ffhq256')
  ap.add_argument('--batch', type=int, default=1)
  ap.add_argument('--temperature', type=float, default=0.8)
  ap.add_argument('--repeats', type=int, default=3)
  ap.add_argument('--what', default='elbo,sample')
  args = ap.parse_args()
  load = os.getloadavg()[0]
  print(f'load average (1 min) {load:.2f} on {os.cpu_count()} cores'
        + ('  -- NOT IDLE, timings unreliable' if load > 0.5 else ''))
  hps = get_preset(args.preset)
  params = api.init_params(hps, jax.random.key(0))
  u8 = jnp.asarray(np.random.RandomState(0).randint(0, 256, (args.batch, hps.image_size,
                                                              hps.image_size, 3)), jnp.uint8)
  x, t = preprocess(u8, hps)
  results = {}
  if 'elbo' in args.what:
    first, med, times = timed(lambda: api.elbo(params, hps, x, t, rng=jax.random.key(1)).elbo,
                              args.repeats)
    results['elbo'] = dict(first_call_s=first, median_s=med, times_s=times)
  if 'sample' in args.what:
    first, med, times = timed(lambda: api.sample(params, hps, args.batch, rng=jax.random.key(2),
                                                 temperature=args.temperature).image, args.repeats)
    results['sample'] = dict(first_call_s=first, median_s=med, times_s=times)
  results['peak_rss_GiB'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
  results.update(preset=args.preset, batch=args.batch, load=load, jax=jax.__version__)
  print(json.dumps(results, indent=1))


if __name__ == '__main__':
  main()
