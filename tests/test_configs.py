"""Every config file builds, carries its preset's official settings, and its tiny variant runs."""
import pathlib

import pytest

from vdvae_jax.hparams import get_preset
from vdvae_jax.model.checkpoint import load_pretrained
from vdvae_jax.train.config import (ConfigError, check_config, hparams_from_config,
                                     load_config_file)

CONFIGS = pathlib.Path(__file__).resolve().parents[1] / 'configs'
PRESET_CONFIGS = ['cifar10', 'imagenet32', 'imagenet64', 'ffhq256', 'ffhq1024']


def load(name, arg=None):
  return load_config_file(str(CONFIGS / f'{name}.py'), arg)


@pytest.mark.parametrize('name', PRESET_CONFIGS)
def test_preset_config_is_official(name):
  c = load(name)
  check_config(c)
  hps = hparams_from_config(c)
  # The architecture and optimisation are the preset's; the compute options are the fast ones.
  assert hps.replace(scan_blocks=False, remat=False, conv_impl='lax') == get_preset(name)
  assert (hps.scan_blocks, hps.remat, hps.conv_impl) == (True, True, 'custom_vjp')
  assert 'python train.py --config=configs/' in open(CONFIGS / f'{name}.py').read()


@pytest.mark.parametrize('name', PRESET_CONFIGS + ['demo'])
def test_tiny_variant_keeps_dataset_conventions(name):
  c = load(name, 'tiny')
  check_config(c)
  hps = hparams_from_config(c)
  assert hps.image_size == 32 and c.data.kind == 'demo'
  if name != 'demo':
    base = get_preset(name)
    assert hps.dataset == base.dataset and hps.low_bit == base.low_bit
    assert (hps.lr, hps.wd, hps.ema_rate, hps.grad_clip) == (base.lr, base.wd, base.ema_rate,
                                                             base.grad_clip)


@pytest.mark.parametrize('name', sorted(p.stem for p in CONFIGS.glob('*.py')))
def test_unknown_variant_is_an_error(name):
  """`--config=configs/x.py:tinny` must not silently give the full config."""
  with pytest.raises(ConfigError, match="unknown config variant 'tinny'; this config file has"):
    load(name, 'tinny')


def test_ffhq256_tiny_trains(tmp_path):
  """The 5-bit ffhq_256 conventions through the whole loop (eval, samples, checkpoint), with
  the full-size configs' compute options (scanned blocks, remat, custom-VJP convolutions)."""
  from vdvae_jax.train import train_and_evaluate
  c = load('ffhq256', 'tiny')
  c.model.update(dict(scan_blocks=True, remat=True, conv_impl='custom_vjp'))
  state = train_and_evaluate(c, str(tmp_path))
  assert int(state.step) == 4
  assert (tmp_path / 'samples' / 'samples_0000004.png').exists()
  assert (tmp_path / 'checkpoints' / '4').exists()


@pytest.mark.parametrize('name,arg', [('demo', 'p64'), ('demo_sr', 'large'), ('demo_sr', 'p64'),
                                      ('demo_sr', 'vdvae_sr'), ('demo_sr', 'srcnn')])
def test_named_variants_build(name, arg):
  c = load(name, arg)
  check_config(c)
  hps = hparams_from_config(c)
  if arg == 'p64':      # the demo model with one more resolution on each side
    base = hparams_from_config(load('demo'))
    assert hps.image_size == 64 and hps.width_at(64) == 64 and hps.width_at(32) == 128
    assert hps.enc_blocks.endswith(base.enc_blocks) and hps.dec_blocks.startswith(base.dec_blocks)
  if name == 'demo_sr':   # starts from a committed VDVAE of the same architecture
    load_pretrained(c.init_from, expected=hps)    # raises CheckpointError otherwise


def test_lr_decay_must_fit_after_the_warm_up():
  c = load('demo_sr', None)
  c.train.lr_decay_steps = c.train.steps - c.model.warmup_iters
  check_config(c)
  c.train.lr_decay_steps += 1
  with pytest.raises(ConfigError, match='lr_decay_steps=.*fit after the warm-up'):
    check_config(c)
