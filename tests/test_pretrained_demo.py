"""The committed demo VDVAEs (pretrained/demo, 32x32 patches; pretrained/demo_p64, 64x64) load
with the architecture of the config that made them and model the held-out photograph far better
than uniform (8 bits per dim): what the SR demos start from."""
import functools
import pathlib

import jax
import numpy as np
import pytest

from vdvae_jax.data.demo import demo_source
from vdvae_jax.data.preprocess import preprocess
from vdvae_jax.model import api
from vdvae_jax.model.checkpoint import load_pretrained
from vdvae_jax.train.config import hparams_from_config, load_config_file

REPO = pathlib.Path(__file__).resolve().parents[1]


# pretrained directory -> the configs/demo.py variant that made it
COMMITTED = {'demo': None, 'demo_p64': 'p64'}


@functools.lru_cache(maxsize=None)
def committed_demo(name):
  """(params, hps) of pretrained/<name>, checked against its configs/demo.py architecture."""
  hps = hparams_from_config(load_config_file(str(REPO / 'configs' / 'demo.py'), COMMITTED[name]))
  params, loaded = load_pretrained(str(REPO / 'pretrained' / name), expected=hps)
  assert loaded == hps
  return params, hps


@pytest.mark.parametrize('name', sorted(COMMITTED))
def test_committed_demo_vdvae_beats_uniform(name):
  params, hps = committed_demo(name)
  tiles = np.stack(list(demo_source('valid', patch_size=hps.image_size)))[:8]   # chelsea
  x, t = preprocess(tiles, hps)
  out = api.elbo(params, hps, x, t, rng=jax.random.key(0))
  bpd = float(np.mean(out.bits_per_dim))
  assert bpd < 5.0, bpd


@pytest.mark.parametrize('name', sorted(COMMITTED))
def test_committed_demo_vdvae_is_finite_on_reordered_colours(name):
  """The SR demos train with RGB reordering (data.channel_shuffle); the frozen VDVAE's posterior
  must stay finite on colours the photographs lack (a 64x64 model trained without reordering
  overflowed on 8 of 48 such patches, docs/super_resolution.md, "64x64 patches")."""
  from vdvae_jax.data.pipeline import make_loader, make_source
  params, hps = committed_demo(name)
  loader = make_loader(make_source('demo', split='train'), batch_size=16, seed=0,
                       crop_size=hps.image_size, random_flip=True, random_rot90=True,
                       channel_shuffle=1.0, shard_index=0, shard_count=1)
  it = iter(loader)
  for i in range(3):
    x, t = preprocess(next(it)['image'], hps)
    out = api.elbo(params, hps, x, t, rng=jax.random.key(i))
    # finite, not good: reordered patches cost up to 13 bits/dim (batch means about 6)
    assert np.isfinite(np.asarray(out.kl_per_block)).all() and np.isfinite(out.elbo).all()
