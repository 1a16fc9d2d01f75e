"""Tests of vdvae_jax.data.pipeline: element and batch layout, LR pairs, determinism, exact resume
(get_state/set_state, a file, and an orbax CheckpointManager), two-host sharding, make_source and
the errors of bad inputs."""
from __future__ import annotations

import numpy as np
import pytest

from vdvae_jax.data import splits
from vdvae_jax.data.degradations import degrade
from vdvae_jax.data.images import ImageError, save_image
from vdvae_jax.data.pipeline import (make_loader, make_source, restore_iterator_state,
                                     save_iterator_state)
from vdvae_jax.data.sources import NpySource, SourceError, SubsetSource


def _indexed(n: int, size: int = 8) -> np.ndarray:
  """uint8 [n, size, size, 3]: image i holds i % 256, i // 256 in channels 0, 1; channel 2 numbers
  the pixels (y * size + x, size <= 16), so every window and its mirror image are unique."""
  arr = np.zeros((n, size, size, 3), np.uint8)
  arr[..., 0] = (np.arange(n) % 256)[:, None, None]
  arr[..., 1] = (np.arange(n) // 256)[:, None, None]
  arr[..., 2] = np.arange(size * size).reshape(size, size)[None]
  return arr


def _ids(batch) -> list[int]:
  img = batch['image']
  return [int(a) + 256 * int(b) for a, b in zip(img[:, 0, 0, 0], img[:, 0, 0, 1])]


@pytest.fixture
def npy(tmp_path) -> str:
  path = str(tmp_path / 'data.npy')
  np.save(path, _indexed(24, 12))
  return path


def _take(it, k):
  return [next(it) for _ in range(k)]


def _assert_same(batches_a, batches_b):
  assert len(batches_a) == len(batches_b)
  for a, b in zip(batches_a, batches_b):
    assert a.keys() == b.keys()
    for k in a:
      np.testing.assert_array_equal(a[k], b[k])


# ---------------------------------------------------------------------------------------------
# Layout.


def test_batches_crop_flip_lr(npy):
  loader = make_loader(NpySource(npy), batch_size=4, seed=0, crop_size=8, random_flip=True,
                       lr_scale=2, shard_index=0, shard_count=1)
  it = iter(loader)
  for b in _take(it, 7):  # runs across the end of the first epoch (24 images)
    assert set(b) == {'image', 'lr'}
    assert b['image'].dtype == b['lr'].dtype == np.uint8
    assert b['image'].shape == (4, 8, 8, 3) and b['lr'].shape == (4, 4, 4, 3)
    for hr, lr in zip(b['image'], b['lr']):
      np.testing.assert_array_equal(lr, degrade(hr, 2, 'bicubic'))
  g = make_loader(NpySource(npy), batch_size=2, seed=0, crop_size=8, lr_scale=4,
                  degradation='gaussian', sigma=1.2, shard_index=0, shard_count=1)
  b = next(iter(g))
  np.testing.assert_array_equal(b['lr'][1], degrade(b['image'][1], 4, 'gaussian', 1.2))


def test_crops_are_windows_of_the_source(npy):
  arr = np.load(npy)
  loader = make_loader(NpySource(npy), batch_size=6, seed=5, crop_size=5, random_flip=True,
                       num_epochs=1, shard_index=0, shard_count=1)
  positions, flips = set(), 0
  for b in loader:
    for img, i in zip(b['image'], _ids(b)):
      found = [(y, x, f) for y in range(8) for x in range(8) for f in (0, 1)
               if np.array_equal(img, (arr[i, y:y + 5, x:x + 5, :][:, ::-1] if f else
                                       arr[i, y:y + 5, x:x + 5, :]))]
      assert len(found) == 1
      positions.add(found[0][:2])
      flips += found[0][2]
  assert len(positions) > 5 and 0 < flips < 24


def test_rot90_and_channel_shuffle_are_symmetries_of_the_window(tmp_path):
  """Every element is a window of its source image under one of the 8 symmetries of the square
  and one of the 6 channel orders (all of which occur); the LR image is the augmented HR's."""
  rng = np.random.default_rng(0)
  arr = rng.integers(0, 256, (6, 10, 10, 3), dtype=np.uint8)   # every window unique
  path = str(tmp_path / 'rand.npy')
  np.save(path, arr)
  loader = make_loader(NpySource(path), batch_size=6, seed=3, crop_size=8, random_flip=True,
                       random_rot90=True, channel_shuffle=True, lr_scale=2, num_epochs=8,
                       shard_index=0, shard_count=1)
  symmetries, orders = set(), set()
  for b in loader:
    for img, lr in zip(b['image'], b['lr']):
      np.testing.assert_array_equal(lr, degrade(img, 2, 'bicubic'))
      found = []
      for i in range(6):
        for y in range(3):
          for x in range(3):
            w = arr[i, y:y + 8, x:x + 8]
            for f in (0, 1):
              for k in range(4):
                for perm in ((0, 1, 2), (0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0)):
                  if np.array_equal(img, np.rot90(w[:, ::-1] if f else w, k)[..., list(perm)]):
                    found.append((f, k, perm))
      assert len(found) == 1
      symmetries.add(found[0][:2])
      orders.add(found[0][2])
  assert len(symmetries) == 8 and len(orders) == 6


def test_channel_shuffle_is_a_probability(tmp_path):
  """channel_shuffle=p reorders the channels of a fraction p of the elements (a random order, so
  about p * 5/6 of them change); 0 changes none; outside [0, 1] is an error."""
  arr = np.zeros((4, 8, 8, 3), np.uint8)
  arr[..., 0], arr[..., 1], arr[..., 2] = 10, 20, 30
  path = str(tmp_path / 'rgb.npy')
  np.save(path, arr)

  def changed(p):
    loader = make_loader(NpySource(path), batch_size=4, seed=0, channel_shuffle=p, num_epochs=150,
                         shard_index=0, shard_count=1)
    imgs = np.concatenate([b['image'] for b in loader])              # [600, 8, 8, 3]
    return np.mean(np.any(imgs[:, 0, 0] != [10, 20, 30], axis=-1))

  assert changed(0.0) == 0.0
  assert abs(changed(0.5) - 0.5 * 5 / 6) < 0.07
  assert abs(changed(1.0) - 5 / 6) < 0.07
  with pytest.raises(ValueError, match='probability'):
    make_loader(NpySource(path), batch_size=4, seed=0, channel_shuffle=1.5, shard_index=0,
                shard_count=1)


def test_rot90_needs_square_crops(npy):
  arr = np.load(npy)[:, :, :10]
  with pytest.raises(SourceError, match='square'):
    next(iter(make_loader(NpySource(_save(npy, arr)), batch_size=2, seed=0, random_rot90=True,
                          shard_index=0, shard_count=1)))


def _save(like: str, arr: np.ndarray) -> str:
  path = like[:-4] + '_rect.npy'
  np.save(path, arr)
  return path


def test_whole_images_in_order_without_shuffle(npy):
  loader = make_loader(NpySource(npy), batch_size=5, seed=0, shuffle=False, num_epochs=1,
                       shard_index=0, shard_count=1)
  batches = list(loader)
  assert [_ids(b) for b in batches] == [list(range(i, i + 5)) for i in range(0, 20, 5)]
  np.testing.assert_array_equal(batches[0]['image'], np.load(npy)[:5])
  kept = list(make_loader(NpySource(npy), batch_size=5, seed=0, shuffle=False, num_epochs=1,
                          drop_remainder=False, shard_index=0, shard_count=1))
  assert [len(_ids(b)) for b in kept] == [5, 5, 5, 5, 4]


def test_center_crop(npy):
  b = next(iter(make_loader(NpySource(npy), batch_size=2, seed=0, shuffle=False, crop_size=4,
                            crop_mode='center', shard_index=0, shard_count=1)))
  np.testing.assert_array_equal(b['image'], np.load(npy)[:2, 4:8, 4:8])


# ---------------------------------------------------------------------------------------------
# Determinism and resume.


def _loader(path, seed=0, **kw):
  kw = {'batch_size': 3, 'crop_size': 6, 'random_flip': True, 'lr_scale': 3,
        'shard_index': 0, 'shard_count': 1, **kw}
  return make_loader(NpySource(path), seed=seed, **kw)


def test_same_seed_same_batches_other_seed_other_order(npy):
  a, b = _take(iter(_loader(npy)), 10), _take(iter(_loader(npy)), 10)
  _assert_same(a, b)
  c = _take(iter(_loader(npy, seed=1)), 10)
  assert [_ids(x) for x in a] != [_ids(x) for x in c]
  ids = [i for x in a[:8] for i in _ids(x)]  # one epoch = 8 batches of 3
  assert sorted(ids) == list(range(24))


def test_restored_iterator_continues_exactly(npy, tmp_path):
  it = iter(_loader(npy))
  _take(it, 5)
  state = it.get_state()
  save_iterator_state(it, tmp_path / 'state' / 'it.json')
  expected = _take(it, 6)  # crosses the epoch boundary at batch 8
  fresh = iter(_loader(npy))
  fresh.set_state(state)
  _assert_same(_take(fresh, 6), expected)
  from_file = iter(_loader(npy))
  restore_iterator_state(from_file, tmp_path / 'state' / 'it.json')
  _assert_same(_take(from_file, 6), expected)
  with pytest.raises(ValueError, match='Sampler in checkpoint does not match'):
    iter(_loader(npy, seed=9)).set_state(state)


def test_orbax_checkpoint_manager_roundtrip(npy, tmp_path):
  ocp = pytest.importorskip('orbax.checkpoint')
  from vdvae_jax.data.pipeline import iterator_restore_args, iterator_save_args
  params = {'w': np.arange(6, dtype=np.float32).reshape(2, 3)}
  it = iter(_loader(npy))
  _take(it, 3)
  with ocp.CheckpointManager(tmp_path / 'ckpt') as mngr:
    mngr.save(3, args=ocp.args.Composite(params=ocp.args.StandardSave(params),
                                         data=iterator_save_args(it)))
    mngr.wait_until_finished()
  expected = _take(it, 4)
  fresh = iter(_loader(npy))
  with ocp.CheckpointManager(tmp_path / 'ckpt') as mngr:
    assert mngr.latest_step() == 3
    restored = mngr.restore(3, args=ocp.args.Composite(
        params=ocp.args.StandardRestore(params), data=iterator_restore_args(fresh)))
  np.testing.assert_array_equal(restored['params']['w'], params['w'])
  _assert_same(_take(fresh, 4), expected)


# ---------------------------------------------------------------------------------------------
# Sharding.


@pytest.mark.parametrize('shuffle', [True, False])
def test_two_hosts_disjoint_and_covering(npy, shuffle):
  seen = []
  for host in range(2):
    loader = make_loader(NpySource(npy), batch_size=4, seed=3, shuffle=shuffle, num_epochs=1,
                         crop_size=6, shard_index=host, shard_count=2)
    seen.append([i for b in loader for i in _ids(b)])
  assert len(seen[0]) == len(seen[1]) == 12
  assert not set(seen[0]) & set(seen[1])
  assert sorted(seen[0] + seen[1]) == list(range(24))


def test_default_shard_is_the_jax_process(npy):
  loader = make_loader(NpySource(npy), batch_size=4, seed=0, num_epochs=1)
  assert sorted(i for b in loader for i in _ids(b)) == list(range(24))  # one process: all


# ---------------------------------------------------------------------------------------------
# make_source.


def test_make_source_kinds(tmp_path, npy):
  tfds = pytest.importorskip('tensorflow_datasets')
  with pytest.raises(ValueError, match=r"unknown source kind 'hdf5'.*'tfds', 'folder', 'npy', "
                                       r"'demo'"):
    make_source('hdf5', path=npy)
  assert len(make_source('npy', path=npy)) == 24
  save_image(tmp_path / 'f' / 'a.png', np.zeros((16, 16, 3), np.uint8))
  assert len(make_source('folder', folder=tmp_path / 'f')) == 1
  assert len(make_source('folder', path=tmp_path / 'f')) == 1
  assert len(make_source('demo', split='valid')) == 1
  assert len(make_source('demo', split='valid', patch_size=32)) == 9 * 14
  with tfds.testing.mock_data(num_examples=3):
    src = make_source('tfds', name='cifar10', tfds_split='test')
    assert len(src) == 3 and src.split == 'test'
  with pytest.raises(ValueError, match='needs official_dataset'):
    make_source('npy', path=npy, split='train')
  with pytest.raises(ValueError, match="needs split='train' or 'valid'"):
    make_source('npy', path=npy, official_dataset='cifar10')
  with pytest.raises(ValueError, match='official_dataset does not apply'):
    make_source('demo', split='train', official_dataset='cifar10')


def test_make_source_official_split(tmp_path):
  path = tmp_path / 'cifar_like.npy'
  np.save(path, _indexed(5100, 1))
  valid = make_source('npy', path=path, split='valid', official_dataset='cifar10')
  train = make_source('npy', path=path, split='train', official_dataset='cifar10')
  assert isinstance(valid, SubsetSource) and len(valid) == 5000 and len(train) == 100
  expected = splits.official_split('cifar10', 5100, 'train')
  got = [int(train[i][0, 0, 0]) + 256 * int(train[i][0, 0, 1]) for i in range(len(train))]
  assert got == expected.tolist()
  assert 'subset index 99' in train.describe(99)


# ---------------------------------------------------------------------------------------------
# Bad input.


def test_image_smaller_than_crop_names_it(tmp_path):
  save_image(tmp_path / 'big.png', np.zeros((32, 32, 3), np.uint8))
  save_image(tmp_path / 'small.png', np.zeros((20, 40, 3), np.uint8))
  loader = make_loader(make_source('folder', folder=tmp_path), batch_size=2, seed=0,
                       shuffle=False, crop_size=24, shard_index=0, shard_count=1)
  with pytest.raises(SourceError, match=r'image 1 of folder .*small\.png\) is 20x40, smaller '
                                        r'than crop_size 24'):
    next(iter(loader))


def test_corrupt_image_in_folder_names_file(tmp_path):
  save_image(tmp_path / 'a.png', np.zeros((16, 16, 3), np.uint8))
  (tmp_path / 'b.png').write_bytes(b'')
  loader = make_loader(make_source('folder', folder=tmp_path), batch_size=2, seed=0,
                       shuffle=False, shard_index=0, shard_count=1)
  with pytest.raises(ImageError, match=r'b\.png: file is empty'):
    next(iter(loader))


def test_mixed_sizes_without_crop(tmp_path):
  save_image(tmp_path / 'a.png', np.zeros((16, 16, 3), np.uint8))
  save_image(tmp_path / 'b.png', np.zeros((16, 32, 3), np.uint8))
  loader = make_loader(make_source('folder', folder=tmp_path), batch_size=2, seed=0,
                       shuffle=False, shard_index=0, shard_count=1)
  with pytest.raises(SourceError, match='different sizes.*pass crop_size'):
    next(iter(loader))


@pytest.mark.parametrize('kw,match', [
    ({'crop_size': 6, 'lr_scale': 4}, 'not a multiple of lr_scale'),
    ({'lr_scale': 2, 'degradation': 'gaussian'}, 'needs sigma'),
    ({'lr_scale': 2, 'degradation': 'box'}, 'degradation must be one of'),
    ({'crop_mode': 'corner'}, 'crop_mode must be one of'),
    ({'seed': -1}, 'seed must be'),
    ({'batch_size': 0}, 'batch_size must be'),
    ({'shard_index': 2, 'shard_count': 2}, 'shard_index < shard_count'),
    ({'shard_index': 0, 'shard_count': 30}, 'cannot be sharded over 30 hosts'),
])
def test_bad_options(npy, kw, match):
  kw = {'batch_size': 2, 'seed': 0, 'shard_index': 0, 'shard_count': 1, **kw}
  with pytest.raises(ValueError, match=match):
    make_loader(NpySource(npy), **kw)


def test_worker_processes_resume_exactly(npy):
  # Each worker batches its own share of the stream, so the grouping differs from
  # worker_count=0; the per-record crops (keyed by seed and stream position) do not.
  kw = {'worker_count': 2, 'crop_size': 6, 'lr_scale': None}
  it = iter(_loader(npy, **kw))
  first = _take(it, 4)
  state = it.get_state()
  expected = _take(it, 4)
  fresh = iter(_loader(npy, **kw))
  fresh.set_state(state)
  _assert_same(_take(fresh, 4), expected)
  single = _take(iter(_loader(npy, crop_size=6, lr_scale=None)), 8)
  crops = lambda bs: sorted(x.tobytes() for b in bs for x in b['image'])
  assert crops(first + expected) == crops(single)  # same crops, other batches
