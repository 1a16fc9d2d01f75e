"""The modes of eval.py as one importable function, run_eval(options)."""
from __future__ import annotations

import json
import os
from typing import Any

import jax
import ml_collections
import numpy as np

from vdvae_jax.evaluate import runner
from vdvae_jax.sr.io import load_model
from vdvae_jax.train.config import ConfigError


def _json_safe(x):
  """inf/nan (e.g. the PSNR of identical images) as strings: results.json stays strict JSON."""
  if isinstance(x, float) and not np.isfinite(x):
    return str(x)
  if isinstance(x, dict):
    return {k: _json_safe(v) for k, v in x.items()}
  if isinstance(x, (list, tuple)):
    return [_json_safe(v) for v in x]
  return x


def _write(result: dict, out_dir: str, suffix: str = '', append: bool = False) -> str:
  """results{suffix}.json, and the Markdown table written to (or appended to) results.md."""
  os.makedirs(out_dir, exist_ok=True)
  with open(os.path.join(out_dir, f'results{suffix}.json'), 'w') as f:
    json.dump(_json_safe(result), f, indent=1, allow_nan=False)
  table = runner.markdown_table(result)
  with open(os.path.join(out_dir, 'results.md'), 'a' if append else 'w') as f:
    f.write(('\n' if append else '') + table)
  return table


def _workdir_config(workdir: str) -> ml_collections.ConfigDict:
  path = os.path.join(workdir, 'config.json')
  if not os.path.exists(path):
    raise ConfigError(f'{workdir}: no config.json (is it a train.py workdir?)')
  with open(path) as f:
    return ml_collections.ConfigDict(json.load(f))


def _model_dir(o) -> str:
  if o.checkpoint:
    return o.checkpoint
  if o.workdir:
    return os.path.join(o.workdir, 'pretrained')
  raise ConfigError('give --checkpoint or --workdir (or --hr_dir/--sr_dir/--scale to only score)')


def run_eval(o: Any) -> str:
  """o: the eval.py flags (any object with the same attributes). Returns a printable summary."""
  temps = [float(t) for t in o.temperatures] or [0.1, 0.8]
  if o.sr_dir:                                              # metrics only
    if not o.hr_dir or not o.scale:
      raise ConfigError('--sr_dir needs --hr_dir and --scale')
    result = runner.score_folders(o.hr_dir, o.sr_dir, o.scale, degradation=o.degradation,
                                  sigma=o.sigma, with_lpips=o.lpips)
    return _write(result, o.output_dir or os.path.join(o.sr_dir, 'eval'))

  params, hps, sr = load_model(_model_dir(o))
  if o.scale and sr is not None and o.scale != sr.scale:
    raise ConfigError(f'--scale={o.scale}: {_model_dir(o)} was trained for x{sr.scale} '
                      f'({sr.lr_size(hps)}x{sr.lr_size(hps)} -> {hps.image_size}x{hps.image_size})')
  out_dir = o.output_dir or os.path.join(o.workdir or o.checkpoint, 'eval')
  if o.input_dir:                                           # the user's own LR images
    if sr is None:
      raise ConfigError(f'{_model_dir(o)} is an unconditional VDVAE, not an SR model')
    if not o.output_dir:
      raise ConfigError('--input_dir needs --output_dir')
    written = runner.super_resolve_folder(params, hps, sr, o.input_dir, o.output_dir,
                                          n_samples=o.n_samples, temperature=temps[-1],
                                          seed=o.seed, pixels=o.pixels,
                                          psi_temperature=o.psi_temperature)
    return f'wrote {len(written)} images to {o.output_dir}'

  if sr is not None:                                        # SR model on HR images
    sets = _hr_sets(o)
    if o.diagnose:
      return _diagnose(o, params, hps, sr, sets, out_dir)
    tables = []
    for i, (name, paths) in enumerate(sets.items()):
      result = runner.evaluate_sr(params, hps, sr, paths, out_dir, temperatures=temps,
                                  n_samples=o.n_samples, seed=o.seed, pixels=o.pixels,
                                  psi_temperature=o.psi_temperature, projection=o.projection,
                                  with_lpips=o.lpips, dataset=name)
      tables.append(_write(result, out_dir, suffix='' if i == 0 else f'_{i}',
                           append=i > 0))
    return '\n'.join(tables)

  temps = [float(t) for t in o.temperatures] or [round(0.1 * i, 1) for i in range(1, 11)]
  return _write(evaluate_vdvae(o, params, hps, temps, out_dir), out_dir)


def _hr_sets(o) -> dict[str, list[str]]:
  """{name: HR image paths} an SR model is evaluated on: --hr_dir, or for a demo workdir the
  held-out photographs (skimage's chelsea, results.json; matplotlib's, results_1.json)."""
  if o.hr_dir:
    from vdvae_jax.data.images import list_images
    return {os.path.basename(os.path.normpath(o.hr_dir)): list_images(o.hr_dir)}
  config = _workdir_config(o.workdir) if o.workdir else None
  if config is None or config.data.kind != 'demo':
    raise ConfigError('give --hr_dir (a folder of HR images, e.g. Set5) to evaluate on')
  from vdvae_jax.data.demo import held_out_sets
  return held_out_sets()


def _diagnose(o, params, hps, sr, sets: dict[str, list[str]], out_dir) -> str:
  """eval.py --diagnose: the SR-vs-bicubic gap taken apart (evaluate/diagnose.py)."""
  from vdvae_jax.evaluate import diagnose
  from vdvae_jax.model.checkpoint import load_pretrained
  base = o.base_checkpoint
  if not base and o.workdir:
    base = _workdir_config(o.workdir).get('init_from', '')
  vdvae = load_pretrained(base, expected=hps)[0] if base else None
  temps = [float(t) for t in o.temperatures] or [0.1]
  results = {name: diagnose.diagnose_sr(params, hps, sr, paths, vdvae_params=vdvae,
                                        temperature=temps[0], seed=o.seed)
             for name, paths in sets.items()}
  os.makedirs(out_dir, exist_ok=True)
  with open(os.path.join(out_dir, 'diagnose.json'), 'w') as f:
    json.dump(_json_safe(results), f, indent=1, allow_nan=False)
  table = '\n'.join(f'### {name}\n\n' + diagnose.markdown(r) for name, r in results.items())
  with open(os.path.join(out_dir, 'diagnose.md'), 'w') as f:
    f.write(table)
  return table


def evaluate_vdvae(o, params, hps, temps, out_dir) -> dict:
  """Negative ELBO (nats/dim, bits/dim) of the eval split, per-block KL, active groups, grids."""
  if not o.workdir:
    raise ConfigError('unconditional evaluation needs --workdir (its config names the data)')
  config = _workdir_config(o.workdir)
  from vdvae_jax.train import parallel
  from vdvae_jax.train.loop import evaluate, make_loaders
  from vdvae_jax.train.host_memory import ReleasingCompiler
  from vdvae_jax.train.losses import elbo_eval
  from vdvae_jax.data.images import save_image
  from vdvae_jax.model.layout import stack_runs, unstack_runs
  from vdvae_jax.model.vae import scan_layout
  mesh = parallel.make_mesh()
  _, loader = make_loaders(config, hps, mesh, config.seed)
  step = ReleasingCompiler(jax.jit(elbo_eval(hps)))     # compiler memory freed before it runs
  n_batches = o.eval_batches or config.train.eval_batches
  layout = scan_layout(hps)
  if layout:   # scanned runs of blocks pre-stacked: the step makes no stacked copy of them
    params = jax.device_put(stack_runs(jax.device_get(params), layout))
  res = evaluate(params, loader, step, mesh, n_batches, 0)
  if layout:   # per-block views of the stacks for the sampler
    params = unstack_runs(jax.device_get(params))
  kl = np.asarray(res['kl_per_block'])
  # A group is active when it carries at least 0.01 nats per image on average.
  mean = dict(elbo_nats_per_dim=float(res['elbo']), bits_per_dim=float(res['bits_per_dim']),
              distortion=float(res['distortion']), rate=float(res['rate']),
              active_groups=int((kl >= 0.01).sum()), groups=int(kl.size))
  from vdvae_jax.evaluate.figures import temperature_grid
  save_image(os.path.join(out_dir, 'samples.png'),
             temperature_grid(params, hps, temps, o.n_samples, jax.random.key(o.seed),
                              pixels=o.pixels))
  return dict(dataset=f'{config.data.kind} {config.data.eval_split}', mean={'vdvae': mean},
              kl_per_block=kl.tolist(), temperatures=temps)
