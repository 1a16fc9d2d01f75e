"""The built-in demo dataset: photographs that ship inside the scikit-image wheel (no download).

The files are read straight from the installed `skimage/data/` folder with `images.load_image`
(grayscale -> RGB by replication); scikit-image's `skimage.data` functions are not called, so no
code path that could fetch with pooch is involved.

  train   astronaut, camera (grayscale), coffee, coins (grayscale), hubble_deep_field,
          immunohistochemistry (ihc), motorcycle_left, rocket          8 images
  valid   chelsea (the cat), held out whole                            1 image
  test    the same held-out image as 'valid'

A second held-out set from another source, for SR evaluation only (`held_out_sets`): the
photograph that ships with matplotlib (mpl-data/sample_data/grace_hopper.jpg).

Every image is cropped to a multiple of 16 in height and width (`modcrop`, top-left kept), so it
passes through every VDVAE resolution. With `patch_size=p`, each image is then cut into
non-overlapping p x p tiles, row by row (right and bottom remainders dropped): a set of equal-size
images, e.g. a fixed validation set (chelsea 288 x 448 gives 4 x 7 = 28 tiles of 64).
"""
from __future__ import annotations

import functools
import importlib.util
import os
from typing import Optional

import numpy as np

from vdvae_jax.data.degradations import modcrop
from vdvae_jax.data.images import load_image
from vdvae_jax.data.sources import ArraySource, DatasetNotFoundError

TRAIN_FILES = ('astronaut.png', 'camera.png', 'coffee.png', 'coins.png', 'hubble_deep_field.jpg',
               'ihc.png', 'motorcycle_left.png', 'rocket.jpg')
HELD_OUT_FILES = ('chelsea.png',)
SPLITS = ('train', 'valid', 'test')
MULTIPLE = 16


def skimage_data_dir() -> str:
  """The `data` folder of the installed scikit-image package (found without importing it)."""
  spec = importlib.util.find_spec('skimage')
  if spec is None or not spec.submodule_search_locations:
    raise DatasetNotFoundError('the demo dataset needs scikit-image installed (pip install '
                               'scikit-image); its wheel carries the photographs')
  return os.path.join(list(spec.submodule_search_locations)[0], 'data')


@functools.lru_cache(maxsize=None)
def _load(filename: str) -> np.ndarray:
  path = os.path.join(skimage_data_dir(), filename)
  if not os.path.isfile(path):
    raise DatasetNotFoundError(f'{path}: demo photograph missing from the installed scikit-image '
                               f'wheel (reinstall scikit-image)')
  img = modcrop(load_image(path), MULTIPLE)  # [H, W, 3], H and W multiples of 16
  img.setflags(write=False)
  return img


def _tiles(img: np.ndarray, p: int) -> list[np.ndarray]:
  """Non-overlapping p x p tiles of [H, W, 3], row by row."""
  h, w = img.shape[:2]
  return [img[y:y + p, x:x + p] for y in range(0, h - p + 1, p) for x in range(0, w - p + 1, p)]


def demo_files(split: str) -> tuple[str, ...]:
  """File names (in skimage/data) of a demo split."""
  if split not in SPLITS:
    raise ValueError(f'demo split must be one of {SPLITS}, got {split!r}')
  return TRAIN_FILES if split == 'train' else HELD_OUT_FILES


def other_source_photos() -> list[str]:
  """Paths of the held-out photographs from another package than the training data's."""
  spec = importlib.util.find_spec('matplotlib')
  if spec is None or not spec.submodule_search_locations:
    raise DatasetNotFoundError('the second held-out set needs matplotlib installed (its wheel '
                               'carries the photograph)')
  path = os.path.join(list(spec.submodule_search_locations)[0], 'mpl-data', 'sample_data',
                      'grace_hopper.jpg')
  if not os.path.isfile(path):
    raise DatasetNotFoundError(f'{path}: missing from the installed matplotlib')
  return [path]


def held_out_sets() -> dict[str, list[str]]:
  """Whole held-out photographs for SR evaluation: {set name: image paths}."""
  return {'demo held-out (skimage chelsea)': [os.path.join(skimage_data_dir(), f)
                                              for f in HELD_OUT_FILES],
          'other source (matplotlib grace_hopper)': other_source_photos()}


def demo_source(split: str = 'train', patch_size: Optional[int] = None) -> ArraySource:
  """The demo images of `split` ('train' | 'valid' | 'test'), whole or as patch_size tiles."""
  files = demo_files(split)
  images = [_load(f) for f in files]
  if patch_size is not None:
    p = int(patch_size)
    if p != patch_size or p < 1:
      raise ValueError(f'patch_size must be a positive integer, got {patch_size!r}')
    for f, img in zip(files, images):
      if min(img.shape[:2]) < p:
        raise ValueError(f'demo image {f} ({img.shape[0]}x{img.shape[1]}) is smaller than '
                         f'patch_size {p}')
    images = [t for img in images for t in _tiles(img, p)]
  what = f'{len(files)} image' + ('s' if len(files) > 1 else '')
  tag = '' if patch_size is None else f', {patch_size}x{patch_size} tiles'
  return ArraySource(images, name=f'demo {split} ({what}{tag})')
