"""train_and_evaluate: exact resume, SIGKILL during a save, the loss falls, one-line errors."""
import json
import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

import reference_sets as ref
from vdvae_jax.train import train_and_evaluate
from vdvae_jax.train.checkpoints import RunCheckpointer
from vdvae_jax.train.config import ConfigError, load_config_file
from vdvae_jax.train.loop import make_loaders

REPO = ref.REPO


def demo_config(arg='tiny', **train):
  c = load_config_file(str(REPO / 'configs' / 'demo.py'), arg)
  c.train.update(train)
  return c


def next_batch_after_restore(config, workdir, step, state):
  from vdvae_jax.train import parallel
  from vdvae_jax.train.config import hparams_from_config
  loader, _ = make_loaders(config, hparams_from_config(config), parallel.make_mesh(), config.seed)
  it = iter(loader)
  ckpt = RunCheckpointer(str(workdir), 3)
  restored = ckpt.restore(step, state, it)
  ckpt.close()
  return restored, next(it)


@pytest.mark.slow(seconds=50)
def test_resume_is_bitwise_exact(tmp_path):
  quiet = dict(eval_every=1000, sample_every=1000, checkpoint_every=3)
  straight = train_and_evaluate(demo_config(steps=6, **quiet), str(tmp_path / 'a'))
  train_and_evaluate(demo_config(steps=3, **quiet), str(tmp_path / 'b'))
  resumed = train_and_evaluate(demo_config(steps=6, **quiet), str(tmp_path / 'b'))
  assert int(straight.step) == int(resumed.step) == 6
  for a, b in zip(jax.tree.leaves(straight), jax.tree.leaves(resumed)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  # The data iterator continues on exactly the same next batch.
  _, nxt_a = next_batch_after_restore(demo_config(steps=6), tmp_path / 'a', 6, straight)
  _, nxt_b = next_batch_after_restore(demo_config(steps=6), tmp_path / 'b', 6, straight)
  np.testing.assert_array_equal(nxt_a['image'], nxt_b['image'])


@pytest.mark.slow(seconds=90)
def test_scanned_runs_are_held_stacked_resume_and_export_per_block(tmp_path):
  """Under scan_blocks the train state holds each run of blocks pre-stacked (model/layout.py):
  training, evaluation and sample grids run, resume is bitwise exact, and the exported model is
  in the per-block layout with the EMA values of the stacked state."""
  from vdvae_jax.model import api
  from vdvae_jax.model.checkpoint import load_pretrained
  from vdvae_jax.model.layout import unstack_runs

  def config(steps):
    c = demo_config(steps=steps, eval_every=2, sample_every=4, checkpoint_every=2)
    c.model.update(dict(scan_blocks=True, remat=True, conv_impl='custom_vjp',
                        enc_blocks='32x2,32d2,16x1,16d2,8x2,8d4,2x1',
                        dec_blocks='2x2,8m2,8x2,16m8,32m16,32x1'))
    return c
  straight = train_and_evaluate(config(4), str(tmp_path / 'a'))
  assert 'dec_blocks_0_to_1' in straight.params['decoder']
  assert 'enc_blocks_0_to_1' in straight.params['encoder']
  train_and_evaluate(config(2), str(tmp_path / 'b'))
  resumed = train_and_evaluate(config(4), str(tmp_path / 'b'))
  for a, b in zip(jax.tree.leaves(straight), jax.tree.leaves(resumed)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  unrolled = config(6)
  unrolled.model.scan_blocks = False          # per-block state: the checkpoint does not fit
  with pytest.raises(ConfigError, match='does not fit the train state.*scan_blocks'):
    train_and_evaluate(unrolled, str(tmp_path / 'b'))
  params, hps = load_pretrained(str(tmp_path / 'a' / 'pretrained'))
  assert jax.tree.structure(params) == jax.tree.structure(api.abstract_params(hps))
  for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(unstack_runs(
      jax.device_get(straight.ema_params)))):
    np.testing.assert_array_equal(a, b)
  assert (tmp_path / 'a' / 'metrics.jsonl').read_text().count('eval/') >= 2


def test_loss_falls_on_demo_data(tmp_path):
  train_and_evaluate(demo_config(steps=40, log_every=5, eval_every=1000, sample_every=40,
                                 checkpoint_every=40), str(tmp_path))
  logged = [json.loads(l) for l in open(tmp_path / 'metrics.jsonl')]
  losses = [r['train/loss'] for r in logged if 'train/loss' in r]
  assert len(losses) == 8
  assert losses[-1] < losses[0] - 0.3, losses
  assert all(np.isfinite(losses)) and logged[-1]['train/skipped_updates'] == 0
  assert os.path.getsize(tmp_path / 'samples' / 'samples_0000040.png') > 0
  assert os.listdir(tmp_path / 'tb')


def run_train(*args, env=None, timeout=300):
  return subprocess.run([sys.executable, str(REPO / 'train.py'), *args], capture_output=True,
                        text=True, cwd=REPO, timeout=timeout, env=env)


def one_line_error(r, text):
  assert r.returncode == 2, r.stderr[-2000:]
  assert 'Traceback' not in r.stderr and text in r.stderr, r.stderr[-2000:]


def test_bad_input_errors(tmp_path):
  afile = tmp_path / 'afile'
  afile.write_text('x')
  with pytest.raises(ConfigError, match='not a directory'):
    train_and_evaluate(demo_config(), str(afile))
  with pytest.raises(ConfigError, match='init_from.*architecture differs'):
    c = demo_config()
    c.init_from = str(make_other_pretrained(tmp_path))
    train_and_evaluate(c, str(tmp_path / 'w'))
  cfg = '--config=configs/demo.py:tiny'
  one_line_error(run_train(cfg, f'--workdir={tmp_path}/w', '--config.train.stepz=3'),
                 'Did you mean "steps"')
  one_line_error(run_train('--config=configs/nope.py', f'--workdir={tmp_path}/w'), 'nope.py')
  one_line_error(run_train('--config=configs/demo.py:tinny', f'--workdir={tmp_path}/w'),
                 "--config=configs/demo.py:tinny: unknown config variant 'tinny'; this config "
                 "file has: 'tiny'")
  one_line_error(run_train(cfg, f'--workdir={afile}'), 'not a directory')
  env = dict(os.environ, XLA_FLAGS=os.environ.get('XLA_FLAGS', '') +
             ' --xla_force_host_platform_device_count=4')
  one_line_error(run_train(cfg, f'--workdir={tmp_path}/w4', '--config.train.batch_size=6',
                           env=env), 'not divisible by the 4 devices')


def make_other_pretrained(tmp_path):
  from tiny import TINY
  from vdvae_jax.model import api
  from vdvae_jax.model.checkpoint import save_pretrained
  return save_pretrained(str(tmp_path / 'other'), api.init_params(TINY, jax.random.key(0)), TINY)


def test_sigkill_during_checkpoint_save_resumes(tmp_path):
  """Checkpoint every step and SIGKILL the run while saves are in flight; the next run resumes
  from the last complete checkpoint and finishes."""
  wd = tmp_path / 'run'
  args = ['--config=configs/demo.py:tiny', f'--workdir={wd}', '--config.train.steps=100000',
          '--config.train.checkpoint_every=1', '--config.train.keep_checkpoints=2',
          '--config.train.eval_every=100000', '--config.train.sample_every=100000']
  proc = subprocess.Popen([sys.executable, str(REPO / 'train.py'), *args], cwd=REPO,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  ckdir = wd / 'checkpoints'
  deadline = time.time() + 240
  killed_mid_save = False
  try:
    while time.time() < deadline:
      names = os.listdir(ckdir) if ckdir.exists() else []
      done = [n for n in names if n.isdigit()]
      if len(done) >= 2 and any('tmp' in n for n in names):
        proc.send_signal(signal.SIGKILL)
        killed_mid_save = True
        break
      time.sleep(0.005)
  finally:
    if proc.poll() is None:
      proc.kill()
    proc.wait()
  assert killed_mid_save, 'never caught a save in flight'
  names = os.listdir(ckdir)
  complete = sorted(int(n) for n in names if n.isdigit())
  assert complete, names
  target = max(complete) + 2
  r = run_train(*args[:2], f'--config.train.steps={target}', '--config.train.eval_every=100000',
                '--config.train.sample_every=100000', '--config.train.checkpoint_every=1')
  assert r.returncode == 0, r.stderr[-3000:]
  assert target in [int(n) for n in os.listdir(ckdir) if n.isdigit()]
