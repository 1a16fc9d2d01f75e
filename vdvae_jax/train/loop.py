"""train_and_evaluate(config, workdir): the training loop behind train.py.

Data-parallel over every device (state replicated, batch sharded); orbax checkpoints with the
data-iterator position, automatic resume from the latest checkpoint in workdir; TensorBoard logs,
a progress bar, periodic EMA evaluation, per-block KL and sample grids at several temperatures.
"""
from __future__ import annotations

import os
from typing import Any, Optional

import jax
import ml_collections
import numpy as np
from tqdm import tqdm

from vdvae_jax.data.pipeline import make_loader, make_source
from vdvae_jax.hparams import HParams
from vdvae_jax.model.checkpoint import save_pretrained
from vdvae_jax.model.layout import stack_runs, unstack_runs
from vdvae_jax.model.scan import compiler_options
from vdvae_jax.train import parallel
from vdvae_jax.train.checkpoints import RunCheckpointer
from vdvae_jax.train.config import ConfigError, check_config, hparams_from_config
from vdvae_jax.train.host_memory import ReleasingCompiler, release_host_memory
from vdvae_jax.train.logging import RunLogger
from vdvae_jax.train.optimizer import lr_schedule, make_optimizer
from vdvae_jax.train.state import TrainState
from vdvae_jax.train.step import make_train_step
from vdvae_jax.train.tasks import Task, make_task


def prepare_workdir(workdir: str) -> str:
  if not workdir:
    raise ConfigError('--workdir is required')
  if os.path.exists(workdir) and not os.path.isdir(workdir):
    raise ConfigError(f'workdir {workdir} exists and is not a directory')
  os.makedirs(workdir, exist_ok=True)
  return os.path.abspath(workdir)


def _source(config: ml_collections.ConfigDict, split: str, which: str):
  """The train or eval source. With data.official_dataset, `split` is the official 'train' or
  'valid' subset (carved out of the training data, as the official code does); otherwise it is
  the TFDS split name (tfds) or the demo split (demo)."""
  d = config.data
  official = d.official_dataset or None
  if d.kind == 'demo':
    return make_source('demo', split=split)
  if d.kind == 'tfds':
    if official:
      return make_source('tfds', name=d.name, data_dir=d.data_dir or None, tfds_split='train',
                         split=split, official_dataset=official)
    return make_source('tfds', name=d.name, data_dir=d.data_dir or None, tfds_split=split)
  path = d.path if which == 'train' or not d.eval_path else d.eval_path
  if not path:
    raise ConfigError(f'config.data.path is required for data.kind={d.kind!r}')
  kw = dict(folder=path) if d.kind == 'folder' else dict(path=path)
  if official:
    return make_source(d.kind, split=split, official_dataset=official, **kw)
  return make_source(d.kind, **kw)


def make_loaders(config, hps: HParams, mesh, seed: int, task: Optional[Task] = None):
  """Host-local train and eval iterators; each host feeds global_batch / process_count images.
  For SR tasks each element also holds 'lr', the degraded HR patch."""
  parallel.check_batch_size(config.train.batch_size, mesh)
  local = config.train.batch_size // jax.process_count()
  common = dict(batch_size=local, crop_size=hps.image_size, worker_count=config.data.worker_count)
  if task is not None and task.lr_scale:
    common.update(lr_scale=task.lr_scale, degradation=task.degradation, sigma=task.sigma)
  train = make_loader(_source(config, config.data.train_split, 'train'), seed=seed, shuffle=True,
                      random_flip=config.data.random_flip,
                      random_rot90=config.data.random_rot90,
                      channel_shuffle=config.data.channel_shuffle, **common)
  evaluation = make_loader(_source(config, config.data.eval_split, 'eval'), seed=seed + 1,
                           shuffle=False, crop_mode='center', **common)
  return train, evaluation


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> TrainState:
  """Train (or resume) the model described by `config`, writing everything under `workdir`."""
  check_config(config)
  hps = hparams_from_config(config)
  workdir = prepare_workdir(workdir)
  parallel.maybe_initialize_distributed(config.distributed)
  mesh = parallel.make_mesh()
  if jax.process_index() == 0:
    with open(os.path.join(workdir, 'config.json'), 'w') as f:
      f.write(config.to_json(indent=1))
    with open(os.path.join(workdir, 'hparams.json'), 'w') as f:
      f.write(hps.to_json())

  rng = jax.random.PRNGKey(config.seed)
  init_rng, state_rng, sample_rng = jax.random.split(rng, 3)
  task = make_task(config, hps)
  train_loader, eval_loader = make_loaders(config, hps, mesh, config.seed, task)
  train_iter = iter(train_loader)

  params = task.init_params(init_rng)
  labels = task.labels(params)
  if task.scan_layout:
    # Scanned runs of blocks pre-stacked: stacking them in the step is a copy kept live through
    # the forward and backward passes (ffhq256: 0.40 GB). Checkpoints keep this layout.
    params = stack_runs(params, task.scan_layout)
    labels = None if labels is None else stack_runs(labels, task.scan_layout)
  # Cosine decay over the last lr_decay_steps steps (0: none).
  decay_start = config.train.steps - config.train.lr_decay_steps
  tx = make_optimizer(lr=hps.lr, warmup_iters=hps.warmup_iters, b1=hps.adam_beta1,
                      b2=hps.adam_beta2, eps=hps.adam_eps, wd=hps.wd, grad_clip=hps.grad_clip,
                      skip_threshold=hps.skip_threshold, labels=labels,
                      lr_factors=task.lr_factors,
                      plateau_factor=config.train.plateau_factor,
                      plateau_patience=config.train.plateau_patience,
                      plateau_accumulation=config.train.plateau_accumulation,
                      decay_start=decay_start, decay_steps=config.train.lr_decay_steps)
  state = TrainState.create(params, tx, state_rng)
  state = jax.device_put(state, parallel.replicated(mesh))

  ckpt = RunCheckpointer(workdir, config.train.keep_checkpoints)
  start = ckpt.latest_step()
  if start is not None:
    state = ckpt.restore(start, state, train_iter)
    print(f'resumed from {ckpt.directory}/{start}')
  start = int(state.step)
  # The op-by-op initialisation compiled hundreds of small programs; give their memory back.
  release_host_memory(clear_jax_caches=True)

  # Both compiled ahead of their first call, the compiler's memory freed before they run.
  train_step = ReleasingCompiler(parallel.jit_data_parallel(
      make_train_step(task.loss_fn, tx, hps.ema_rate), mesh,
      compiler_options=compiler_options(hps)))
  eval_step = ReleasingCompiler(jax.jit(task.eval_fn, in_shardings=(
      parallel.replicated(mesh), parallel.data_sharded(mesh), parallel.replicated(mesh))))
  schedule = lr_schedule(hps.lr, hps.warmup_iters, decay_start, config.train.lr_decay_steps)
  logger = RunLogger(workdir)
  t = config.train
  window: dict[str, list] = {}

  bar = tqdm(range(start, t.steps), initial=start, total=t.steps, desc='train', unit='step',
             disable=not t.progress_bar or jax.process_index() != 0, dynamic_ncols=True)
  for step in bar:
    batch = parallel.global_batch(next(train_iter), mesh)
    state, metrics = train_step(state, batch)
    for k, v in metrics.items():
      if k not in ('skipped', 'skipped_updates'):
        window.setdefault(k, []).append(v)
    done = step + 1
    if done % t.log_every == 0 or done == t.steps:
      summary = {k: float(np.mean(jax.device_get(v))) for k, v in window.items()}
      summary.update(skipped_updates=int(metrics['skipped_updates']),
                     learning_rate=float(schedule(step)))
      window = {}
      logger.scalars(done, summary, 'train/')
      bar.set_postfix(loss=f"{summary['loss']:.4f}", gnorm=f"{summary['grad_norm']:.1f}",
                      skips=summary['skipped_updates'])
    if done % t.eval_every == 0:
      evaluate(state.ema_params, eval_loader, eval_step, mesh, t.eval_batches, done, logger)
    if done % t.sample_every == 0:
      grid = task.grid(unstack_runs(jax.device_get(state.ema_params)), next(iter(eval_loader)),
                       jax.random.fold_in(sample_rng, done))
      logger.image_grid(done, 'samples', grid)
    if done % t.checkpoint_every == 0 or done == t.steps:
      ckpt.save(done, state, train_iter)
  bar.close()
  ckpt.close()
  logger.close()
  if jax.process_index() == 0:
    # The EMA weights as a ready model: `config.init_from` of SR runs, eval.py, notebooks.
    save_pretrained(os.path.join(workdir, 'pretrained'),
                    unstack_runs(jax.device_get(state.ema_params)), hps,
                    source=dict(workdir=workdir, step=int(state.step)), overwrite=True,
                    sr=task.sr)
  return state


def evaluate(params, loader, eval_step, mesh, n_batches: int, step: int,
             logger: Optional[RunLogger] = None) -> dict[str, Any]:
  """Mean of every per-image metric of eval_step (EMA parameters) over n_batches of the eval
  split; [D, B] metrics (per-block KL) are averaged per block."""
  sums: dict[str, Any] = {}
  count = 0
  it = iter(loader)
  for i in range(n_batches):
    try:
      batch = parallel.global_batch(next(it), mesh)
    except StopIteration:
      break
    out = jax.device_get(eval_step(params, batch, jax.random.PRNGKey(i)))
    for k, v in out.items():
      sums[k] = sums.get(k, 0.0) + np.asarray(v, np.float64).sum(axis=-1)
    count += batch['image'].shape[0]
  result = {k: v / max(count, 1) for k, v in sums.items()}
  if logger is not None and count:
    logger.scalars(step, {k: v for k, v in result.items() if np.ndim(v) == 0}, 'eval/')
    if 'kl_per_block' in result:
      logger.scalars(step, {f'block_{i:03d}': v for i, v in enumerate(result['kl_per_block'])},
                     'eval_kl/')
  return result
