"""Tests of vdvae_jax.data.sources, splits and demo: TFDS (a tiny dataset really prepared on disk
in array_record format, and `tfds.testing.mock_data`), folders, .npy files, subsets, the official
splits and the built-in demo set; bad inputs must fail fast with errors naming the file."""
from __future__ import annotations

import io
import os
import pickle
import socket
import time

import numpy as np
import pytest
from PIL import Image

from vdvae_jax.data import demo, splits
from vdvae_jax.data.images import ImageError, save_image
from vdvae_jax.data.sources import (ArraySource, DatasetNotFoundError, FolderSource, NpySource,
                                    SourceError, SubsetSource, TfdsSource)

tfds = pytest.importorskip('tensorflow_datasets')


# ---------------------------------------------------------------------------------------------
# TFDS. Building a dataset normally needs TensorFlow (to encode the images); giving the Image
# feature PNG bytes skips the encoding, so this writes real array_record files without it.


def _png(a: np.ndarray) -> bytes:
  buf = io.BytesIO()
  Image.fromarray(a).save(buf, format='PNG')
  return buf.getvalue()


class VdvaeJaxTestImages(tfds.core.GeneratorBasedBuilder):
  """5 RGB (train) and 2 grayscale-in-RGB-feature (test) images; image i is filled with 10 * i."""

  VERSION = tfds.core.Version('1.0.0')

  def _info(self):
    return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
        'image': tfds.features.Image(shape=(None, None, 3)),
        'gray': tfds.features.Image(shape=(None, None, 1)),
        'label': tfds.features.ClassLabel(num_classes=5)}))

  def _split_generators(self, dl_manager):
    del dl_manager
    return {'train': self._generate_examples(5), 'test': self._generate_examples(2)}

  def _generate_examples(self, n):
    for i in range(n):
      yield i, {'image': _png(np.full((6, 8, 3), 10 * i, np.uint8)),
                'gray': _png(np.full((6, 8), 10 * i + 1, np.uint8)), 'label': i}


@pytest.fixture(scope='module')
def tfds_dir(tmp_path_factory) -> str:
  data_dir = str(tmp_path_factory.mktemp('tfds'))
  VdvaeJaxTestImages(data_dir=data_dir, file_format='array_record').download_and_prepare()
  return data_dir


def test_tfds_prepared_on_disk(tfds_dir):
  src = TfdsSource('vdvae_jax_test_images', 'train', data_dir=tfds_dir)
  assert len(src) == 5
  imgs = [src[i] for i in range(5)]
  assert all(im.dtype == np.uint8 and im.shape == (6, 8, 3) for im in imgs)
  # The prepared files hold the examples in a shuffled order: compare as a set.
  assert sorted(int(im[0, 0, 0]) for im in imgs) == [0, 10, 20, 30, 40]
  np.testing.assert_array_equal(src[-1], imgs[4])
  with pytest.raises(IndexError):
    src[5]
  assert repr(src) == repr(TfdsSource('vdvae_jax_test_images', 'train', data_dir=tfds_dir))
  assert 'vdvae_jax_test_images/train' in src.name
  np.testing.assert_array_equal(pickle.loads(pickle.dumps(src))[2], imgs[2])  # worker processes
  with pytest.raises(SourceError, match=r"vdvae_jax_test_images.*Unknown split 'valid'"):
    TfdsSource('vdvae_jax_test_images', 'valid', data_dir=tfds_dir)


def test_tfds_grayscale_to_rgb_and_bad_key(tfds_dir):
  src = TfdsSource('vdvae_jax_test_images', 'test', data_dir=tfds_dir, image_key='gray')
  im = src[0]
  assert im.shape == (6, 8, 3) and (im == im[..., :1]).all() and im[0, 0, 0] % 10 == 1
  bad = TfdsSource('vdvae_jax_test_images', 'test', data_dir=tfds_dir, image_key='img')
  with pytest.raises(SourceError, match=r"no feature 'img'.*'gray'.*'image'"):
    bad[0]


def test_tfds_mock_data():
  with tfds.testing.mock_data(num_examples=4):
    src = TfdsSource('cifar10', 'train')
    assert len(src) == 4 and src[3].shape == (32, 32, 3) and src[3].dtype == np.uint8
    gray = TfdsSource('mnist', 'train')
    im = gray[1]
    assert im.shape == (28, 28, 3) and (im == im[..., :1]).all()


@pytest.mark.parametrize('name', ['mnist', 'not_a_dataset_xyz'])
def test_tfds_not_prepared_fails_fast(tmp_path, name):
  t = time.perf_counter()
  with pytest.raises(DatasetNotFoundError) as e:
    TfdsSource(name, 'train', data_dir=tmp_path)
  assert time.perf_counter() - t < 5
  msg = str(e.value)
  assert isinstance(e.value, FileNotFoundError)
  assert f'tfds build {name} --data_dir={tmp_path}' in msg and 'array_record' in msg
  assert 'copy' in msg


# ---------------------------------------------------------------------------------------------
# Folders.


def _folder(tmp_path, n=3) -> list[np.ndarray]:
  imgs = [np.full((4 + i, 5, 3), 30 * i, np.uint8) for i in range(n)]
  for i, im in enumerate(imgs):
    save_image(tmp_path / ('sub' if i == n - 1 else '') / f'img{i}.png', im)
  (tmp_path / 'notes.txt').write_text('not an image')
  return imgs


def test_folder_source(tmp_path):
  imgs = _folder(tmp_path)
  src = FolderSource(tmp_path)
  assert len(src) == 3 and src.paths == sorted(src.paths)
  for i, im in enumerate(imgs):
    np.testing.assert_array_equal(src[src.paths.index(
        str(tmp_path / ('sub' if i == 2 else '') / f'img{i}.png'))], im)
  assert len(FolderSource(tmp_path, recursive=False)) == 2
  assert src.describe(0).endswith(f'({src.paths[0]})')
  assert 'FolderSource(' in repr(src) and 'n=3' in repr(src)


@pytest.mark.parametrize('content', [b'', b'\x89PNG\r\n\x1a\n\x00\x00', 'truncated', b'hello'])
def test_folder_bad_image_names_file(tmp_path, content):
  _folder(tmp_path)
  if content == 'truncated':
    content = _png(np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8))[:-200]
  bad = tmp_path / 'zz_bad.png'
  bad.write_bytes(content)
  src = FolderSource(tmp_path)
  i = src.paths.index(str(bad))
  with pytest.raises(ImageError, match=str(bad)):
    src[i]
  src[0]  # the other images still read


def test_folder_missing_or_empty(tmp_path):
  with pytest.raises(DatasetNotFoundError, match='folder not found'):
    FolderSource(tmp_path / 'nope')
  (tmp_path / 'empty').mkdir()
  with pytest.raises(ImageError, match='no image files'):
    FolderSource(tmp_path / 'empty')


# ---------------------------------------------------------------------------------------------
# .npy files.


def test_npy_source_rgb_and_gray(tmp_path):
  arr = np.random.default_rng(1).integers(0, 256, (4, 6, 5, 3), dtype=np.uint8)
  np.save(tmp_path / 'rgb.npy', arr)
  for mmap in (True, False):
    src = NpySource(tmp_path / 'rgb.npy', mmap=mmap)
    assert len(src) == 4
    np.testing.assert_array_equal(np.stack([src[i] for i in range(4)]), arr)
  gray = arr[..., 0]
  np.save(tmp_path / 'gray.npy', gray)
  np.save(tmp_path / 'gray1.npy', gray[..., None])
  for name in ('gray.npy', 'gray1.npy'):
    im = NpySource(tmp_path / name)[2]
    assert im.shape == (6, 5, 3)
    np.testing.assert_array_equal(im, np.repeat(gray[2][..., None], 3, axis=-1))


def test_npy_pickles_the_path_not_the_array(tmp_path):
  arr = np.random.default_rng(2).integers(0, 256, (64, 32, 32, 3), dtype=np.uint8)
  np.save(tmp_path / 'a.npy', arr)
  src = NpySource(tmp_path / 'a.npy')
  blob = pickle.dumps(src)
  assert len(blob) < 2000  # 196 KB of pixels are not in it
  np.testing.assert_array_equal(pickle.loads(blob)[7], arr[7])
  assert repr(pickle.loads(blob)) == repr(src)


@pytest.mark.parametrize('arr,match', [
    (np.zeros((4, 6, 5, 3), np.float32), 'expected dtype uint8, found float32'),
    (np.zeros((4, 6, 5, 3), np.int64), 'found int64'),
    (np.zeros((6, 5), np.uint8), 'found 2 dimensions'),
    (np.zeros((2, 3, 6, 5, 3), np.uint8), 'found 5 dimensions'),
    (np.zeros((4, 3, 6, 5), np.uint8), 'channels first'),
    (np.zeros((4, 6, 5, 4), np.uint8), r'found shape \(4, 6, 5, 4\)'),
    (np.zeros((0, 6, 5, 3), np.uint8), 'holds no images'),
])
def test_npy_wrong_content(tmp_path, arr, match):
  p = tmp_path / 'x.npy'
  np.save(p, arr)
  with pytest.raises(SourceError, match=match) as e:
    NpySource(p)
  assert str(p) in str(e.value)


def test_npy_unreadable(tmp_path):
  good = tmp_path / 'good.npy'
  np.save(good, np.zeros((8, 16, 16, 3), np.uint8))
  cases = {'empty.npy': b'', 'garbage.npy': b'this is not numpy' * 10,
           'truncated.npy': good.read_bytes()[:1000]}
  for name, content in cases.items():
    (tmp_path / name).write_bytes(content)
    for mmap in (True, False):
      with pytest.raises(SourceError, match=str(tmp_path / name)):
        NpySource(tmp_path / name, mmap=mmap)
  np.savez(tmp_path / 'arch.npz', x=np.zeros((2, 4, 4, 3), np.uint8))
  with pytest.raises(SourceError, match='.npz archive'):
    NpySource(tmp_path / 'arch.npz')
  with pytest.raises(DatasetNotFoundError, match='missing.npy: file not found'):
    NpySource(tmp_path / 'missing.npy')
  with pytest.raises(SourceError, match='is a directory'):
    NpySource(tmp_path)


# ---------------------------------------------------------------------------------------------
# Subsets, in-memory images, index protocol.


def test_subset_source():
  base = ArraySource([np.full((2, 2, 3), i, np.uint8) for i in range(6)], name='six')
  sub = SubsetSource(base, [4, 1, 5])
  assert len(sub) == 3 and [int(sub[i][0, 0, 0]) for i in range(3)] == [4, 1, 5]
  assert sub.describe(2) == 'image 5 of six (subset index 2)'
  assert repr(sub) == repr(SubsetSource(base, np.array([4, 1, 5])))
  assert repr(sub) != repr(SubsetSource(base, [1, 4, 5]))
  with pytest.raises(IndexError, match='subset index 6 out of range'):
    SubsetSource(base, [0, 6])
  with pytest.raises(ValueError, match='integer'):
    SubsetSource(base, [0.5])
  with pytest.raises(IndexError):
    sub[3]
  with pytest.raises(TypeError):
    sub[1.0]
  assert int(sub[np.int64(-1)][0, 0, 0]) == 5


def test_array_source_rejects_non_uint8():
  with pytest.raises(SourceError, match='found dtype float64'):
    ArraySource([np.zeros((2, 2, 3))], name='f')


# ---------------------------------------------------------------------------------------------
# Official splits.


@pytest.mark.parametrize('dataset,n,seed,n_valid', [
    ('cifar10', 50_000, 11172018, 5000), ('imagenet32', 1_281_167, 42, 5000),
    ('imagenet64', 1_281_167, 42, 5000), ('ffhq_256', 70_000, 5, 7000)])
def test_official_permutation_splits(dataset, n, seed, n_valid):
  tr, va = splits.official_split(dataset, n, 'train'), splits.official_split(dataset, n, 'valid')
  assert tr.dtype == va.dtype == np.int64
  assert len(tr) == n - n_valid and len(va) == n_valid
  both = np.concatenate([tr, va])
  assert np.array_equal(np.sort(both), np.arange(n))  # disjoint and covering
  perm = np.random.RandomState(seed).permutation(n)
  if dataset == 'cifar10':  # sklearn ShuffleSplit: test = perm[:n_test], train = the rest
    np.testing.assert_array_equal(va[:5], perm[:5])
    np.testing.assert_array_equal(tr[:5], perm[5000:5005])
  else:  # np.random.seed(s); perm = np.random.permutation(n); train = perm[:-m], valid = perm[-m:]
    np.testing.assert_array_equal(tr[:5], perm[:5])
    np.testing.assert_array_equal(va[-5:], perm[-5:])
    np.random.seed(seed)  # the official code's exact call sequence
    np.testing.assert_array_equal(va, np.random.permutation(n)[-n_valid:])
  np.testing.assert_array_equal(tr, splits.official_split(dataset, n, 'train'))  # deterministic


def test_official_split_known_values():
  # Pinned so that a numpy change in RandomState.permutation would be noticed.
  np.testing.assert_array_equal(splits.official_split('cifar10', 50_000, 'valid')[:3],
                                [38899, 48321, 12222])
  np.testing.assert_array_equal(splits.official_split('ffhq256', 70_000, 'train')[:3],
                                [6628, 2777, 7414])


def test_ffhq1024_and_errors():
  tr = splits.official_split('ffhq1024', 70_000, 'train')
  va = splits.official_split('ffhq_1024', 70_000, 'valid')
  np.testing.assert_array_equal(tr, np.arange(65_000))
  np.testing.assert_array_equal(va, np.arange(65_000, 70_000))
  with pytest.raises(ValueError, match='needs the 70000 images'):
    splits.official_split('ffhq_1024', 69_999, 'train')
  with pytest.raises(ValueError, match="one of \\['cifar10'"):
    splits.official_split('mnist', 100, 'train')
  with pytest.raises(ValueError, match='split must be one of'):
    splits.official_split('cifar10', 50_000, 'test')
  with pytest.raises(ValueError, match='cannot hold the 5000 validation images'):
    splits.official_split('cifar10', 5000, 'train')


# ---------------------------------------------------------------------------------------------
# Demo set.


def test_demo_source_no_network(monkeypatch):
  def no_network(*args, **kwargs):
    raise OSError('network disabled in this test')
  monkeypatch.setattr(socket.socket, 'connect', no_network)
  monkeypatch.setattr(socket, 'create_connection', no_network)
  train, valid, test = (demo.demo_source(s) for s in ('train', 'valid', 'test'))
  assert len(train) == len(demo.TRAIN_FILES) == 8 and len(valid) == len(test) == 1
  np.testing.assert_array_equal(valid[0], test[0])
  for src in (train, valid):
    for i in range(len(src)):
      h, w, c = src[i].shape
      assert src[i].dtype == np.uint8 and c == 3 and h % 16 == 0 and w % 16 == 0
  assert valid[0].shape == (288, 448, 3)  # chelsea 300 x 451, modcropped
  assert all(train[i].shape != valid[0].shape for i in range(len(train)))  # held out
  assert 'chelsea.png' not in demo.TRAIN_FILES
  for f in demo.TRAIN_FILES + demo.HELD_OUT_FILES:
    assert os.path.isfile(os.path.join(demo.skimage_data_dir(), f))


def test_demo_patches():
  tiles = demo.demo_source('valid', patch_size=64)
  assert len(tiles) == (288 // 64) * (448 // 64)
  whole = demo.demo_source('valid')[0]
  np.testing.assert_array_equal(tiles[8], whole[64:128, 64:128])  # row 1, column 1
  assert repr(tiles) != repr(demo.demo_source('valid'))
  with pytest.raises(ValueError, match='smaller than patch_size 512'):
    demo.demo_source('valid', patch_size=512)
  with pytest.raises(ValueError, match="one of \\('train', 'valid', 'test'\\)"):
    demo.demo_source('validation')
