"""The committed demo VDVAE (pretrained/demo) loads with the architecture of the config that made
it and models the held-out photograph far better than uniform (8 bits per dim): what the SR demos
start from."""
import functools
import pathlib

import jax
import numpy as np

from vdvae_jax.data.demo import demo_source
from vdvae_jax.data.preprocess import preprocess
from vdvae_jax.model import api
from vdvae_jax.model.checkpoint import load_pretrained
from vdvae_jax.train.config import hparams_from_config, load_config_file

REPO = pathlib.Path(__file__).resolve().parents[1]


@functools.lru_cache(maxsize=None)
def committed_demo():
  """(params, hps) of pretrained/demo, checked against configs/demo.py's architecture."""
  hps = hparams_from_config(load_config_file(str(REPO / 'configs' / 'demo.py')))
  params, loaded = load_pretrained(str(REPO / 'pretrained' / 'demo'), expected=hps)
  assert loaded == hps
  return params, hps


def test_committed_demo_vdvae_beats_uniform():
  params, hps = committed_demo()
  tiles = np.stack(list(demo_source('valid', patch_size=hps.image_size)))[:8]   # chelsea
  x, t = preprocess(tiles, hps)
  out = api.elbo(params, hps, x, t, rng=jax.random.key(0))
  bpd = float(np.mean(out.bits_per_dim))
  assert bpd < 5.0, bpd


def test_committed_demo_vdvae_is_finite_on_reordered_colours():
  """The SR demos train with RGB reordering (data.channel_shuffle); the frozen VDVAE's posterior
  must stay finite on colours the photographs lack (a 64x64 model trained without reordering
  overflowed on 8 of 48 such patches, docs/super_resolution.md, "64x64 patches")."""
  from vdvae_jax.data.pipeline import make_loader, make_source
  params, hps = committed_demo()
  loader = make_loader(make_source('demo', split='train'), batch_size=16, seed=0,
                       crop_size=hps.image_size, random_flip=True, random_rot90=True,
                       channel_shuffle=1.0, shard_index=0, shard_count=1)
  it = iter(loader)
  for i in range(3):
    x, t = preprocess(next(it)['image'], hps)
    out = api.elbo(params, hps, x, t, rng=jax.random.key(i))
    # finite, not good: reordered patches cost up to 13 bits/dim (batch means about 6)
    assert np.isfinite(np.asarray(out.kl_per_block)).all() and np.isfinite(out.elbo).all()
