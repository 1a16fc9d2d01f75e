"""The official VDVAE train/validation splits (openai/vdvae `data.py`), as index arrays.

`official_split(dataset, n, split)` returns the indices, into the official training array of n
images, of the 'train' or 'valid' part, in the order the official code yields them:

  cifar10      `trX, vaX, ... = train_test_split(trX, trY, test_size=5000, random_state=11172018)`
               on the 50,000 images of data_batch_1..5 in file order. sklearn (not a dependency)
               does, in `ShuffleSplit._iter_indices`: `perm = check_random_state(seed)
               .permutation(n)` (i.e. `np.random.RandomState(seed).permutation(n)`),
               `test = perm[:n_test]`, `train = perm[n_test:n_test + n_train]` with
               n_test = 5000, n_train = n - 5000; `train_test_split` returns X[train], X[test].
               So valid = perm[:5000], train = perm[5000:].
  imagenet32,  `np.random.seed(42); perm = np.random.permutation(n)` (the global RandomState, the
  imagenet64   same stream as `np.random.RandomState(42).permutation(n)`);
               train = perm[:-5000], valid = perm[-5000:].
  ffhq_256     `np.random.seed(5); perm = np.random.permutation(n)` on the 70,000 images of
               `ffhq-256.npy`; train = perm[:-7000], valid = perm[-7000:].
  ffhq_1024    by image number: 0..64999 train, 65000..69999 valid (the official folders
               ffhq1024/train and ffhq1024/valid); n must be 70,000.

The official test sets are separate data (cifar10 test_batch, imagenet*-valid.npy); ffhq has none
(the official code evaluates on the validation images).

The indices refer to the *official* array order. A TFDS copy of a dataset stores its examples in
another order, so the same indices pick a split of the right size but different images there.
"""
from __future__ import annotations

import numpy as np

# Official sizes of the training array each split is cut from, and of its validation part.
OFFICIAL_N = {'cifar10': 50_000, 'imagenet32': 1_281_167, 'imagenet64': 1_281_167,
              'ffhq_256': 70_000, 'ffhq_1024': 70_000}
VALID_SIZE = {'cifar10': 5000, 'imagenet32': 5000, 'imagenet64': 5000, 'ffhq_256': 7000,
              'ffhq_1024': 5000}
SEEDS = {'cifar10': 11172018, 'imagenet32': 42, 'imagenet64': 42, 'ffhq_256': 5}
_ALIASES = {'ffhq256': 'ffhq_256', 'ffhq1024': 'ffhq_1024'}
SPLITS = ('train', 'valid')


def canonical_dataset(dataset: str) -> str:
  """'ffhq256' -> 'ffhq_256' etc.; ValueError listing the datasets for an unknown name."""
  name = _ALIASES.get(dataset, dataset)
  if name not in VALID_SIZE:
    raise ValueError(f'no official split for dataset {dataset!r}; one of {sorted(VALID_SIZE)} '
                     f'(or {sorted(_ALIASES)})')
  return name


def official_split(dataset: str, n: int, split: str) -> np.ndarray:
  """int64 [m] indices of the official 'train' or 'valid' part of an n-image training array.

  For the permutation-based sets any n > the validation size works (the official code uses the
  array's length); ffhq_1024 needs n == 70000. `OFFICIAL_N` has the official n of each set.
  """
  name = canonical_dataset(dataset)
  if split not in SPLITS:
    raise ValueError(f"split must be one of {SPLITS}, got {split!r} (the official test sets are "
                     f"separate data: use them whole)")
  n = int(n)
  n_valid = VALID_SIZE[name]
  if name == 'ffhq_1024':
    if n != OFFICIAL_N[name]:
      raise ValueError(f'ffhq_1024 is split by image number (0..64999 train, 65000..69999 valid) '
                       f'and needs the 70000 images, got n={n}')
    start, stop = (n - n_valid, n) if split == 'valid' else (0, n - n_valid)
    return np.arange(start, stop, dtype=np.int64)
  if n <= n_valid:
    raise ValueError(f'{name}: n={n} images cannot hold the {n_valid} validation images '
                     f'(official n: {OFFICIAL_N[name]})')
  perm = np.random.RandomState(SEEDS[name]).permutation(n).astype(np.int64)  # [n]
  if name == 'cifar10':  # sklearn ShuffleSplit: test first, then train
    return perm[:n_valid] if split == 'valid' else perm[n_valid:]
  return perm[-n_valid:] if split == 'valid' else perm[:-n_valid]
