"""Random-access sources of uint8 RGB images for grain (`__len__`, `__getitem__(i)`).

Every source returns `np.ndarray` uint8 [H, W, 3] for i in [0, len) (negative indices count from
the end; others raise IndexError), has a human-readable `name`, `describe(i)` naming the image
(and its file where there is one) for error messages, and a deterministic `repr` (no memory
addresses, no data): grain stores `repr(source)` in an iterator state and refuses to restore it
into a loader whose source has a different `repr`.

  TfdsSource     a split of a TFDS dataset prepared on disk in array_record format, read with
                 `tfds.data_source(..., download=False)`; never downloads.
  FolderSource   every image file under a folder (`images.list_images`, sorted paths), read with
                 `images.load_image` (its conversions; errors name the file).
  NpySource      a .npy holding uint8 [N, H, W, 3] (the layout of the official VDVAE setup, e.g.
                 `imagenet32-train.npy`, `ffhq-256.npy`); also [N, H, W, 1] and [N, H, W]
                 grayscale, whose value is replicated to R, G and B (as `load_image` does for 'L').
                 Memory-mapped by default; a pickled NpySource (grain worker processes) carries
                 only the path and re-opens the file.
  ArraySource    images already in memory (the demo set).
  SubsetSource   a source seen through a list of indices (the official splits).

Pixels: uint8 only (other dtypes raise SourceError saying what was found); [H, W], [H, W, 1]
grayscale -> RGB by replication; 3 channels as they are; any other channel count raises.

Errors: `DatasetNotFoundError` (a FileNotFoundError) when the data is not on disk, with what to do;
`SourceError` (a ValueError) when it is there but unusable; both name the file or dataset.
"""
from __future__ import annotations

import hashlib
import operator
import os
import pickle
from typing import Any, Optional, Sequence

import numpy as np

from vdvae_jax.data.images import list_images, load_image


class DatasetNotFoundError(FileNotFoundError):
  """The data a source needs is not on disk; the message says how to get it there."""


class SourceError(ValueError):
  """Data that exists but cannot be used as uint8 RGB images; the message names it."""


def to_rgb_uint8(img: Any, what: str) -> np.ndarray:
  """[H, W], [H, W, 1] or [H, W, 3] uint8 -> contiguous [H, W, 3] uint8; `what` names it in errors."""
  img = np.asarray(img)
  if img.dtype != np.uint8:
    raise SourceError(f'{what}: expected uint8 pixels, found dtype {img.dtype}')
  if img.ndim == 3 and img.shape[-1] == 1:
    img = img[..., 0]
  if img.ndim == 2:
    img = np.repeat(img[..., None], 3, axis=-1)  # [H, W, 3]
  if img.ndim != 3 or img.shape[-1] != 3:
    raise SourceError(f'{what}: expected an [H, W, 3] RGB or [H, W(, 1)] grayscale image, found '
                      f'shape {img.shape}')
  if img.shape[0] < 1 or img.shape[1] < 1:
    raise SourceError(f'{what}: empty image of shape {img.shape}')
  return np.ascontiguousarray(img)


def describe(source: Any, index: int) -> str:
  """'image i of <source>' (with its file where the source knows it), for error messages."""
  if hasattr(source, 'describe'):
    return source.describe(index)
  return f'image {index} of {getattr(source, "name", repr(source))}'


def _check_index(index: Any, n: int, name: str) -> int:
  """A valid 0-based int index into n items, or IndexError."""
  try:
    i = operator.index(index)
  except TypeError:
    raise TypeError(f'{name}: index must be an integer, got {type(index).__name__}') from None
  if i < 0:
    i += n
  if not 0 <= i < n:
    raise IndexError(f'{name}: index {index} out of range for {n} images')
  return i


class ImageSource:
  """Base: `name`, `describe(i)`, `__getitems__` and a `repr` from `_repr_fields`."""

  name: str

  def __len__(self) -> int:
    raise NotImplementedError

  def __getitem__(self, index: int) -> np.ndarray:
    raise NotImplementedError

  def __getitems__(self, indices: Sequence[int]) -> list[np.ndarray]:
    return [self[i] for i in indices]

  def describe(self, index: int) -> str:
    return f'image {index} of {self.name}'

  def _repr_fields(self) -> dict[str, Any]:
    raise NotImplementedError

  def __repr__(self) -> str:
    fields = ', '.join(f'{k}={v!r}' for k, v in self._repr_fields().items())
    return f'{type(self).__name__}({fields})'


# ---------------------------------------------------------------------------------------------
# TFDS


def _tfds_help(name: str, data_dir: Optional[str]) -> str:
  where = data_dir or os.environ.get('TFDS_DATA_DIR') or '~/tensorflow_datasets'
  return (f'prepare it in array_record format: run `tfds build {name} --data_dir={where} '
          f'--file_format=array_record` on a machine with TensorFlow and internet access, or copy '
          f'such a prepared folder ({where}/{name.split(":")[0]}/<version>/ with its '
          f'dataset_info.json and *.array_record-* files) here')


def open_tfds(name: str, split: str, data_dir: Optional[str] = None) -> Any:
  """`tfds.data_source(name, split=split, data_dir=data_dir, download=False)`, failing fast.

  Raises DatasetNotFoundError saying how to prepare the dataset when it is unknown, not prepared,
  or prepared in a format without random access (TFRecord); SourceError for other problems (e.g. an
  unknown split). Nothing is downloaded.
  """
  import tensorflow_datasets as tfds  # lazy: ~0.2 s, and only TfdsSource needs it
  from tensorflow_datasets.core import registered

  desc = f'TFDS dataset {name!r} (split {split!r}, data_dir {data_dir or "default"})'
  try:
    return tfds.data_source(name, split=split, data_dir=data_dir, download=False, try_gcs=False)
  except registered.DatasetNotFoundError as e:
    first = str(e).splitlines()[0]
    raise DatasetNotFoundError(f'{desc}: not found ({first}); no local copy and downloads are '
                               f'disabled; {_tfds_help(name, data_dir)}') from None
  except (NotImplementedError, FileNotFoundError, AssertionError) as e:
    first = (str(e).split(' Possible root causes')[0].splitlines() or [type(e).__name__])[0]
    raise DatasetNotFoundError(f'{desc}: not prepared on disk in array_record format (tfds: '
                               f'{first}); {_tfds_help(name, data_dir)}') from None
  except ValueError as e:  # e.g. "Unknown split 'valid'. Should be one of ['train', 'test']."
    raise SourceError(f'{desc}: {e}') from None


class TfdsSource(ImageSource):
  """Images `example[image_key]` of a prepared TFDS split, read with random access."""

  def __init__(self, name: str, split: str, data_dir: Optional[str | os.PathLike] = None,
               image_key: str = 'image'):
    self.dataset, self.split, self.image_key = name, split, image_key
    self.data_dir = None if data_dir is None else os.fspath(data_dir)
    self.name = f'tfds {name}/{split}' + (f' in {self.data_dir}' if self.data_dir else '')
    self._ds = open_tfds(name, split, self.data_dir)
    self._len = len(self._ds)
    if self._len == 0:
      raise SourceError(f'{self.name}: the split holds no examples')

  def __len__(self) -> int:
    return self._len

  def __getitem__(self, index: int) -> np.ndarray:
    i = _check_index(index, self._len, self.name)
    example = self._ds[i]
    if not isinstance(example, dict) or self.image_key not in example:
      keys = sorted(example) if isinstance(example, dict) else type(example).__name__
      raise SourceError(f'{self.describe(i)}: no feature {self.image_key!r} (found {keys}); pass '
                        f'image_key=')
    return to_rgb_uint8(example[self.image_key], self.describe(i))

  def _repr_fields(self) -> dict[str, Any]:
    return {'name': self.dataset, 'split': self.split, 'data_dir': self.data_dir,
            'image_key': self.image_key, 'n': self._len}


# ---------------------------------------------------------------------------------------------
# Folder


class FolderSource(ImageSource):
  """Every image file (PNG/JPEG/BMP/WebP) under `folder`, sorted by path."""

  def __init__(self, folder: str | os.PathLike, recursive: bool = True):
    self.folder, self.recursive = os.fspath(folder), recursive
    if not os.path.exists(self.folder):
      raise DatasetNotFoundError(f'{self.folder}: folder not found')
    self.paths = list_images(self.folder, recursive=recursive)  # ImageError if empty / not a dir
    self.name = f'folder {self.folder}'

  def __len__(self) -> int:
    return len(self.paths)

  def __getitem__(self, index: int) -> np.ndarray:
    return load_image(self.paths[_check_index(index, len(self.paths), self.name)])

  def describe(self, index: int) -> str:
    return f'image {index} of {self.name} ({self.paths[index]})'

  def _repr_fields(self) -> dict[str, Any]:
    return {'folder': self.folder, 'recursive': self.recursive, 'n': len(self.paths)}


# ---------------------------------------------------------------------------------------------
# .npy


def _load_npy(path: str, mmap: bool) -> np.ndarray:
  """np.load with errors that name the file; checks uint8 [N, H, W(, 1 | 3)]."""
  if not os.path.exists(path):
    raise DatasetNotFoundError(f'{path}: file not found')
  if os.path.isdir(path):
    raise SourceError(f'{path}: is a directory, not a .npy file')
  try:
    arr = np.load(path, mmap_mode='r' if mmap else None, allow_pickle=False)
  except (ValueError, OSError, EOFError, pickle.UnpicklingError) as e:
    size = os.path.getsize(path)
    what = 'empty file (0 bytes)' if size == 0 else f'not a readable .npy file ({e})'
    raise SourceError(f'{path}: {what}') from None
  if not isinstance(arr, np.ndarray):  # np.load gives an NpzFile for .npz archives
    arr.close()
    raise SourceError(f'{path}: is a .npz archive; expected a .npy array uint8 [N, H, W, 3]')
  if arr.dtype != np.uint8:
    raise SourceError(f'{path}: expected dtype uint8, found {arr.dtype} with shape {arr.shape} '
                      f'(convert with np.clip(np.rint(x), 0, 255).astype(np.uint8) if the values '
                      f'are 0..255)')
  if arr.ndim not in (3, 4):
    raise SourceError(f'{path}: expected uint8 [N, H, W, 3] (or [N, H, W] grayscale), found '
                      f'{arr.ndim} dimensions {arr.shape}')
  if arr.ndim == 4 and arr.shape[-1] not in (1, 3):
    hint = ' (channels first? transpose to [N, H, W, C])' if arr.shape[1] in (1, 3) else ''
    raise SourceError(f'{path}: expected 3 (or 1) channels last, found shape {arr.shape}{hint}')
  if arr.shape[0] == 0 or arr.shape[1] == 0 or arr.shape[2] == 0:
    raise SourceError(f'{path}: holds no images (shape {arr.shape})')
  return arr


class NpySource(ImageSource):
  """Images of a .npy array uint8 [N, H, W, 3] (or grayscale [N, H, W(, 1)]), memory-mapped."""

  def __init__(self, path: str | os.PathLike, mmap: bool = True):
    self.path, self.mmap = os.fspath(path), mmap
    self.name = f'npy {self.path}'
    self._arr: Optional[np.ndarray] = _load_npy(self.path, mmap)
    self.shape = tuple(self._arr.shape)

  def _array(self) -> np.ndarray:
    if self._arr is None:  # after unpickling
      self._arr = _load_npy(self.path, self.mmap)
      if tuple(self._arr.shape) != self.shape:
        raise SourceError(f'{self.path}: changed on disk (shape {self.shape} -> {self._arr.shape})')
    return self._arr

  def __getstate__(self) -> dict[str, Any]:
    state = dict(self.__dict__)
    if self.mmap:
      state['_arr'] = None  # carry the path, not the (possibly huge) array
    return state

  def __len__(self) -> int:
    return self.shape[0]

  def __getitem__(self, index: int) -> np.ndarray:
    i = _check_index(index, self.shape[0], self.name)
    return to_rgb_uint8(np.array(self._array()[i]), self.describe(i))  # copy out of the mmap

  def _repr_fields(self) -> dict[str, Any]:
    return {'path': self.path, 'shape': self.shape}


# ---------------------------------------------------------------------------------------------
# In memory, subsets


class ArraySource(ImageSource):
  """Images held in memory; `name` identifies them (it is the `repr`, not the pixels)."""

  def __init__(self, images: Sequence[np.ndarray], name: str):
    self.name = name
    self.images = [to_rgb_uint8(img, f'image {i} of {name}') for i, img in enumerate(images)]
    if not self.images:
      raise SourceError(f'{name}: no images')
    for img in self.images:
      img.setflags(write=False)

  def __len__(self) -> int:
    return len(self.images)

  def __getitem__(self, index: int) -> np.ndarray:
    return self.images[_check_index(index, len(self.images), self.name)]

  def _repr_fields(self) -> dict[str, Any]:
    return {'name': self.name, 'n': len(self.images)}


class SubsetSource(ImageSource):
  """`source[indices[i]]` for i in [0, len(indices)); the order of `indices` is kept."""

  def __init__(self, source: Any, indices: Sequence[int] | np.ndarray):
    self.source = source
    idx = np.asarray(indices)
    if idx.ndim != 1 or not (idx.size == 0 or np.issubdtype(idx.dtype, np.integer)):
      raise ValueError(f'indices must be a 1-D integer array, got {idx.dtype} {idx.shape}')
    idx = idx.astype(np.int64)
    n = len(source)
    if idx.size == 0:
      raise ValueError(f'empty subset of {getattr(source, "name", repr(source))}')
    if idx.min() < 0 or idx.max() >= n:
      bad = idx[(idx < 0) | (idx >= n)][0]
      raise IndexError(f'subset index {bad} out of range for '
                       f'{getattr(source, "name", repr(source))} with {n} images')
    idx.setflags(write=False)
    self.indices = idx
    self.name = f'{getattr(source, "name", repr(source))} [subset of {idx.size}]'
    self._digest = hashlib.sha1(idx.tobytes()).hexdigest()[:16]

  def __len__(self) -> int:
    return int(self.indices.size)

  def __getitem__(self, index: int) -> np.ndarray:
    return self.source[int(self.indices[_check_index(index, self.indices.size, self.name)])]

  def describe(self, index: int) -> str:
    return f'{describe(self.source, int(self.indices[index]))} (subset index {index})'

  def _repr_fields(self) -> dict[str, Any]:
    return {'source': self.source, 'n': len(self), 'indices_sha1': self._digest}


__all__ = ['ArraySource', 'DatasetNotFoundError', 'FolderSource', 'ImageSource', 'NpySource',
           'SourceError', 'SubsetSource', 'TfdsSource', 'describe', 'open_tfds', 'to_rgb_uint8']
