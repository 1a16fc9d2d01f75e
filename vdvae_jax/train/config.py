"""The training config schema (ml_collections) and its typed boundary.

A config file's `get_config(arg)` returns `base_config(preset)` with the fields it changes. The
model section holds every HParams field (so `--config.model.width=64` works and a typo fails);
library code receives the frozen `HParams` built from it, never the ConfigDict.
"""
from __future__ import annotations

import ml_collections

from vdvae_jax.hparams import HParams, HParamsError, get_preset


class ConfigError(ValueError):
  """A config that cannot run; the message names the field."""


def check_variant(arg: str | None, variants: tuple[str, ...] = ('tiny',)) -> None:
  """A config file's `:variant` (`--config=configs/x.py:tiny`) must be one the file knows: a typo
  would otherwise silently give the full config."""
  if arg not in (None, *variants):
    raise ConfigError(f'unknown config variant {arg!r}; this config file has: '
                      + ', '.join(repr(v) for v in variants))


def base_config(preset: str = 'cifar10') -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.model = ml_collections.ConfigDict(get_preset(preset).to_dict())
  c.model_preset = preset                 # informational: what the model section started from
  # Compute options (the same function and parameters, see docs/performance.md): the training
  # structure that is fastest and leanest on XLA:CPU. Plain unrolled `lax` convolutions
  # (scan_blocks=False, remat=False, conv_impl='lax') compile slower and need far more memory.
  c.model.update(dict(scan_blocks=True, remat=True, remat_policy='recompute_all',
                      conv_impl='custom_vjp'))
  # Precision (vdvae_jax/model/precision.py): --config.model.dtype=bfloat16 computes in bf16 with
  # float32 master weights; model.param_dtype must stay float32 for training.
  c.init_from = ''                        # pretrained dir (convert_torch_weights.py output)

  c.data = ml_collections.ConfigDict()
  c.data.kind = 'tfds'                    # tfds | folder | npy | demo
  c.data.name = ''                        # TFDS name, e.g. 'cifar10'
  c.data.path = ''                        # folder or .npy file
  c.data.eval_path = ''                   # folder/.npy for evaluation (default: data.path)
  c.data.data_dir = ml_collections.FieldReference('', field_type=str)  # TFDS data_dir
  c.data.official_dataset = ''            # apply the official VDVAE split of this dataset
  c.data.train_split = 'train'            # official 'train'/'valid' with official_dataset,
  c.data.eval_split = 'valid'             # else the TFDS split or the demo split
  # Images larger than model.image_size are cropped to it (random position, seeded).
  c.data.random_flip = False
  c.data.random_rot90 = False             # rotations by k * 90 degrees (square crops)
  c.data.channel_shuffle = 0.0            # P(random RGB order): colours the data lacks (SR)
  c.data.worker_count = 0

  c.train = ml_collections.ConfigDict()
  c.train.steps = 1000
  c.train.batch_size = get_preset(preset).n_batch   # global batch (per device x devices)
  c.train.log_every = 50
  c.train.eval_every = 1000
  c.train.eval_batches = 8
  c.train.checkpoint_every = 1000
  c.train.keep_checkpoints = 3
  c.train.sample_every = 1000
  c.train.sample_temperatures = (0.1, 0.4, 0.7, 1.0)
  c.train.samples_per_temperature = 4
  c.train.progress_bar = True
  # Reduce-on-plateau learning-rate decay (0: off): factor, patience and averaging window (steps).
  c.train.plateau_factor = 0.0
  c.train.plateau_patience = 10
  c.train.plateau_accumulation = 1000
  # Cosine decay of the learning rate to 0 over the last lr_decay_steps of train.steps (0: off).
  c.train.lr_decay_steps = 0

  c.distributed = ml_collections.FieldReference(None, field_type=bool)  # None: from environment

  # Super-resolution (vdvae_jax.sr.settings.SRSettings); method '' trains the plain VDVAE.
  c.sr = ml_collections.ConfigDict()
  c.sr.method = ''                        # '' | 'vdvae_sr' | 'diverse'
  c.sr.scale = 4
  c.sr.lr_enc_blocks = ''
  c.sr.lr_upsample = 1                    # the LR-encoder reads the LR upsampled by this
  c.sr.condition = 'depth'                # vdvae_sr: 'depth' (paper) | 'resolution' (code)
  c.sr.num_conditioned = 0                # vdvae_sr, 'depth': 0 = the LR-encoder's depth
  c.sr.max_condition_res = 32             # vdvae_sr, 'resolution': condition blocks below this
  c.sr.gate = 'scalar'                    # vdvae_sr: 'scalar' (paper) | 'channel' (code)
  c.sr.gate_scale = 1.0                   # vdvae_sr: alpha = gate_scale * parameter (paper: 1)
  c.sr.finetune_lr_scale = 1.0            # vdvae_sr: the decoder's lr = model.lr * this (paper: 1)
  c.sr.ky = 0                             # diverse: groups predicted from the LR image
  c.sr.degradation = 'bicubic'            # 'bicubic' (MATLAB imresize) | 'gaussian'
  c.sr.sigma = 0.0                        # gaussian blur sigma
  c.sr.eval_temperature = 0.1             # temperature of the samples scored during training
  c.sr.pixels = 'mean'                    # DMoL pixel rule of SR images: mean | mode | sample
  return c


def set_schedule(c: ml_collections.ConfigDict, steps: int, every: int) -> ml_collections.ConfigDict:
  """Train for `steps`; evaluate, checkpoint and log samples every `every` steps."""
  c.train.steps = steps
  c.train.eval_every = c.train.checkpoint_every = c.train.sample_every = every
  return c


def hparams_from_config(config: ml_collections.ConfigDict) -> HParams:
  try:
    return HParams.from_dict(config.model.to_dict())
  except (HParamsError, TypeError) as e:
    raise ConfigError(f'config.model: {e}') from None


def check_config(config: ml_collections.ConfigDict) -> None:
  """Fail early, with the field's name, on values that cannot run."""
  t = config.train
  for name in ('steps', 'batch_size', 'log_every', 'eval_every', 'checkpoint_every',
               'keep_checkpoints', 'sample_every'):
    if int(t[name]) < 1:
      raise ConfigError(f'config.train.{name} must be >= 1, got {t[name]}')
  decay, room = int(t.lr_decay_steps), max(int(t.steps) - int(config.model.warmup_iters), 0)
  if not 0 <= decay <= room:
    raise ConfigError(f'config.train.lr_decay_steps={decay}: the decay must fit after the '
                      f'warm-up, 0 .. steps - model.warmup_iters = {room}')
  if config.data.kind not in ('tfds', 'folder', 'npy', 'demo'):
    raise ConfigError(f"config.data.kind must be one of tfds, folder, npy, demo; "
                      f"got {config.data.kind!r}")
  from vdvae_jax.model.likelihood import PIXEL_RULES
  if config.sr.pixels not in PIXEL_RULES:
    raise ConfigError(f'config.sr.pixels must be one of {", ".join(PIXEL_RULES)}; '
                      f'got {config.sr.pixels!r}')
  hps = hparams_from_config(config)
  if hps.param_dtype != 'float32':
    raise ConfigError(f'config.model.param_dtype={hps.param_dtype!r}: training keeps float32 '
                      "master weights; bfloat16 parameters are for inference (ELBO, sampling, "
                      "SR). Use config.model.dtype='bfloat16' for bfloat16 compute")


def make_tiny(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """The `tiny` variant of a preset config: same dataset conventions (preprocessing, 5-bit
  targets, optimiser), a 32x32 model of width 16 on the built-in demo photographs, a few steps,
  in the plain unrolled structure."""
  c.model.update(dict(image_size=32, width=16, zdim=4, num_mixtures=3, custom_width_str='',
                      enc_blocks='32x1,32d2,16x1,16d2,8x1,8d4,2x1',
                      dec_blocks='2x1,8m2,8x1,16m8,32m16,32x1', warmup_iters=2))
  # A model this small compiles faster unrolled (the same function; tests cover both structures).
  c.model.update(dict(scan_blocks=False, remat=False, conv_impl='lax'))
  c.data.update(dict(kind='demo', name='', path='', official_dataset='', train_split='train',
                     eval_split='valid', worker_count=0))
  c.train.update(dict(batch_size=4, steps=4, log_every=2, eval_every=4, eval_batches=1,
                      checkpoint_every=4, sample_every=4, sample_temperatures=(0.5, 1.0),
                      samples_per_temperature=2, progress_bar=False))
  return c


def load_config_file(path: str, arg: str | None = None) -> ml_collections.ConfigDict:
  """get_config(arg) of a config file given by path (what --config=path[:arg] does)."""
  import importlib.util
  import os
  if not os.path.exists(path):
    raise ConfigError(f'config file {path} not found')
  spec = importlib.util.spec_from_file_location(
      'config_' + os.path.splitext(os.path.basename(path))[0], path)
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  return mod.get_config(arg)
