"""The grain input pipeline: source -> (random crop, flip, LR degradation) -> batches, sharded per
host, with an iterator whose state can be saved and restored exactly.

  loader = make_loader(make_source('npy', path='ffhq-256.npy', split='train',
                                   official_dataset='ffhq_256'),
                       batch_size=8, seed=0, crop_size=None, random_flip=True)
  it = iter(loader)
  batch = next(it)                 # {'image': uint8 [B, H, W, 3]} (+ 'lr' uint8 [B, H/s, W/s, 3])

Elements. Each record is `source[k]` (uint8 [H, W, 3]); then, in this order:
  crop      crop_size=c: a c x c window, top-left (y, x) drawn uniformly ('random') or centred
            ('center'); an image smaller than c raises SourceError naming it.
  flip      random_flip: left-right with probability 1/2.
  rot90     random_rot90: a rotation by k * 90 degrees, k uniform in 0..3 (with the flip: the 8
            symmetries of the square; images must be square after the crop).
  channels  channel_shuffle=p: with probability p, the RGB channels in a uniformly random order
            (one of 6): colours the data does not have (a blue background in photographs with
            none), for SR training; True means p = 1.
  LR        lr_scale=s: 'image' is modcropped to a multiple of s and 'lr' =
            `degradations.degrade(image, s, degradation, sigma)` (uint8 [h/s, w/s, 3]).
Batches stack every key: {'image': uint8 [B, H, W, 3], 'lr': uint8 [B, H/s, W/s, 3]}; images of
different sizes cannot share a batch (SourceError saying so: pass crop_size).

Randomness. The crop position and the flip come from grain's per-record generator,
`np.random.Generator(Philox(key=seed + i))` with i the global position of the record in the
sampler's stream (epoch-aware), so they depend only on `seed` and that position: the same seed
gives the same batches and a restored iterator replays exactly. With worker_count = W > 0, worker w
takes stream positions w, w + W, ... and batches its own share, the batches coming round-robin:
every record gets the same crop as with W = 0, but the grouping into batches differs, so W is part
of the iterator state (grain refuses to restore a state saved with another W). Shuffling is grain's `IndexSampler` (a fresh permutation per epoch,
derived from `seed`); `num_epochs=None` repeats forever and batches run across epoch boundaries.

Sharding. Host `shard_index` of `shard_count` (default: `jax.process_index()` of
`jax.process_count()`) reads the contiguous block `grain.sharding.even_split` gives it, with
`drop_remainder=True`: every host sees n // shard_count records per epoch (the last
n % shard_count are never read), so all hosts run the same number of steps; blocks are disjoint
and, when shard_count divides n, cover the source.

Checkpointing. `it.get_state()` (JSON bytes) / `it.set_state(state)` resume exactly: after
restoring, the iterator yields the batch that would have come next. grain refuses a state whose
sampler, worker count or `repr(source)` differ from the loader's. With orbax, put the iterator
into the same `CheckpointManager` step as the model (one JSON per process,
`process_<i>-of-<n>.json`):

  import orbax.checkpoint as ocp
  mngr = ocp.CheckpointManager(directory)
  mngr.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                          data=iterator_save_args(it)))
  ...
  it = iter(make_loader(...same arguments...))
  restored = mngr.restore(step, args=ocp.args.Composite(
      state=ocp.args.StandardRestore(abstract_state), data=iterator_restore_args(it)))
  # `it` (also restored['data']) now continues from the saved position.

Without orbax: `save_iterator_state(it, path)` / `restore_iterator_state(it, path)`.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Any, Optional, Sequence

import grain
import numpy as np

from vdvae_jax.data.atomic import atomic_write
from vdvae_jax.data.degradations import degrade, modcrop
from vdvae_jax.data.demo import demo_source
from vdvae_jax.data.sources import (FolderSource, NpySource, SourceError, SubsetSource, TfdsSource,
                                    describe)
from vdvae_jax.data.splits import official_split

SOURCE_KINDS = ('tfds', 'folder', 'npy', 'demo')
CROP_MODES = ('random', 'center')
DEGRADATIONS = ('bicubic', 'gaussian')


# ---------------------------------------------------------------------------------------------
# Sources


def make_source(kind: str, *, split: Optional[str] = None, official_dataset: Optional[str] = None,
                **kwargs: Any) -> Any:
  """A source by kind; with `official_dataset` and `split` ('train' | 'valid'), its official split.

    make_source('tfds', name='cifar10', tfds_split='train', data_dir=None, image_key='image')
    make_source('folder', folder='ffhq1024', recursive=True)   # (path= also names the folder)
    make_source('npy', path='imagenet32-train.npy', mmap=True)
    make_source('demo', split='train', patch_size=None)     # split: 'train' | 'valid' | 'test'

  e.g. make_source('npy', path='ffhq-256.npy', split='valid', official_dataset='ffhq_256') is
  the official 7000-image validation set (`splits.official_split`). Without official_dataset the
  whole source is returned and `split` must be left out (or '') for the non-demo kinds.
  """
  if kind not in SOURCE_KINDS:
    raise ValueError(f'unknown source kind {kind!r}; one of {SOURCE_KINDS}')
  split, official_dataset = split or None, official_dataset or None  # '' (a config default): none
  if kind == 'demo':
    if official_dataset is not None:
      raise ValueError('the demo source has its own split; official_dataset does not apply')
    return demo_source(split or 'train', **kwargs)
  if split is not None and official_dataset is None:
    raise ValueError(f'split={split!r} needs official_dataset (which official split?); leave both '
                     f'out to use the whole source')
  if kind == 'tfds':
    tfds_split = kwargs.pop('tfds_split', 'train')
    source = TfdsSource(split=tfds_split, **kwargs)
  elif kind == 'folder':
    if 'path' in kwargs:
      kwargs['folder'] = kwargs.pop('path')
    source = FolderSource(**kwargs)
  else:
    source = NpySource(**kwargs)
  if official_dataset is None:
    return source
  if split is None:
    raise ValueError(f'official_dataset={official_dataset!r} needs split=\'train\' or \'valid\'')
  return SubsetSource(source, official_split(official_dataset, len(source), split))


class _Keyed:
  """Wraps a source so each record carries its key (for error messages); same `repr`."""

  def __init__(self, source: Any):
    self.source = source

  def __len__(self) -> int:
    return len(self.source)

  def __getitem__(self, key: int) -> dict[str, Any]:
    return {'image': self.source[key], 'key': int(key)}

  def __repr__(self) -> str:
    return repr(self.source)


# ---------------------------------------------------------------------------------------------
# Per-record transform and batching


@dataclasses.dataclass(frozen=True)
class PatchTransform(grain.transforms.RandomMap):
  """Crop, flip and LR degradation of one record (see the module docstring)."""

  source: Any
  crop_size: Optional[int] = None
  crop_mode: str = 'random'
  random_flip: bool = False
  random_rot90: bool = False
  channel_shuffle: float = 0.0         # probability; True = 1
  lr_scale: Optional[int] = None
  degradation: str = 'bicubic'
  sigma: Optional[float] = None

  def random_map(self, element: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
    img, key = element['image'], element['key']  # [H, W, 3] uint8
    h, w = img.shape[:2]
    c = self.crop_size
    if c is not None:
      if h < c or w < c:
        raise SourceError(f'{describe(self.source, key)} is {h}x{w}, smaller than crop_size {c}')
      if self.crop_mode == 'random':
        y, x = int(rng.integers(0, h - c + 1)), int(rng.integers(0, w - c + 1))
      else:
        y, x = (h - c) // 2, (w - c) // 2
      img = img[y:y + c, x:x + c]  # [c, c, 3]
    if self.random_flip and rng.random() < 0.5:
      img = img[:, ::-1]
    if self.random_rot90:
      if img.shape[0] != img.shape[1]:
        raise SourceError(f'{describe(self.source, key)}: random_rot90 needs square images (pass '
                          f'crop_size), got {img.shape[0]}x{img.shape[1]}')
      img = np.rot90(img, int(rng.integers(0, 4)))
    if self.channel_shuffle and rng.random() < self.channel_shuffle:
      img = img[..., rng.permutation(3)]
    if self.lr_scale is None:
      return {'image': np.ascontiguousarray(img)}
    s = self.lr_scale
    if h < s or w < s:
      raise SourceError(f'{describe(self.source, key)} is {h}x{w}, smaller than lr_scale {s}')
    img = np.ascontiguousarray(modcrop(img, s))  # [h', w', 3], multiples of s
    return {'image': img, 'lr': degrade(img, s, self.degradation, self.sigma)}  # lr [h'/s, w'/s, 3]


class StackBatch:
  """Grain batch_fn: np.stack each key; images of different sizes raise a SourceError."""

  def __call__(self, values: Sequence[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    out = {}
    for k in values[0]:
      shapes = sorted({v[k].shape for v in values})
      if len(shapes) > 1:
        raise SourceError(f'cannot batch {k!r} images of different sizes {shapes}; pass crop_size '
                          f'(or use a source of equal-size images, e.g. demo patch_size)')
      out[k] = np.stack([v[k] for v in values])  # [B, ...]
    return out

  def __repr__(self) -> str:
    return 'StackBatch()'


# ---------------------------------------------------------------------------------------------
# Loader


def _check_options(n: int, batch_size: int, seed: int, crop_size: Optional[int], crop_mode: str,
                   channel_shuffle: float, lr_scale: Optional[int], degradation: str,
                   sigma: Optional[float], shard_index: int, shard_count: int) -> None:
  if n < 1:
    raise ValueError('the source is empty')
  if int(batch_size) != batch_size or batch_size < 1:
    raise ValueError(f'batch_size must be a positive integer, got {batch_size!r}')
  if not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**32:
    raise ValueError(f'seed must be an integer in [0, 2**32), got {seed!r}')
  if crop_size is not None and (int(crop_size) != crop_size or crop_size < 1):
    raise ValueError(f'crop_size must be a positive integer or None, got {crop_size!r}')
  if crop_mode not in CROP_MODES:
    raise ValueError(f'crop_mode must be one of {CROP_MODES}, got {crop_mode!r}')
  if not 0.0 <= float(channel_shuffle) <= 1.0:
    raise ValueError(f'channel_shuffle is a probability in [0, 1], got {channel_shuffle!r}')
  if lr_scale is not None:
    if int(lr_scale) != lr_scale or lr_scale < 1:
      raise ValueError(f'lr_scale must be a positive integer or None, got {lr_scale!r}')
    if crop_size is not None and crop_size % lr_scale:
      raise ValueError(f'crop_size {crop_size} is not a multiple of lr_scale {lr_scale}')
    if degradation not in DEGRADATIONS:
      raise ValueError(f'degradation must be one of {DEGRADATIONS}, got {degradation!r}')
    if degradation == 'gaussian' and sigma is None:
      raise ValueError("degradation='gaussian' needs sigma")
  if not 0 <= shard_index < shard_count:
    raise ValueError(f'need 0 <= shard_index < shard_count, got {shard_index} of {shard_count}')
  if n < shard_count:
    raise ValueError(f'{n} images cannot be sharded over {shard_count} hosts')


def _allow_grain_workers() -> None:
  """grain's worker processes read absl flags, which raise unless parsed: outside an absl app
  (`app.run` parses them), mark them parsed, i.e. keep every flag's default."""
  from absl import flags
  if not flags.FLAGS.is_parsed():
    flags.FLAGS.mark_as_parsed()


def make_loader(source: Any, *, batch_size: int, seed: int, shuffle: bool = True,
                num_epochs: Optional[int] = None, crop_size: Optional[int] = None,
                crop_mode: str = 'random', random_flip: bool = False,
                random_rot90: bool = False, channel_shuffle: float = 0.0,
                lr_scale: Optional[int] = None, degradation: str = 'bicubic',
                sigma: Optional[float] = None, shard_index: Optional[int] = None,
                shard_count: Optional[int] = None, worker_count: int = 0,
                drop_remainder: bool = True,
                read_options: Optional[grain.ReadOptions] = None) -> grain.DataLoader:
  """A grain DataLoader of batches {'image': uint8 [B, H, W, 3](, 'lr': ...)} (module docstring).

  batch_size is per host. shard_index / shard_count default to the JAX process index / count.
  worker_count > 0 runs reading and transforms in that many processes (part of the iterator state:
  restore with the same value; outside an absl app this marks absl flags parsed, which grain's
  workers need). drop_remainder drops a last partial batch (finite num_epochs only).
  read_options default: 4 reading threads, a buffer of max(32, 2 * batch_size) records.
  """
  if shard_index is None or shard_count is None:
    import jax  # the default is the JAX process layout
    shard_index = jax.process_index() if shard_index is None else shard_index
    shard_count = jax.process_count() if shard_count is None else shard_count
  n = len(source)
  _check_options(n, batch_size, seed, crop_size, crop_mode, channel_shuffle, lr_scale, degradation,
                 sigma, shard_index, shard_count)
  shard = grain.sharding.ShardOptions(shard_index=int(shard_index), shard_count=int(shard_count),
                                      drop_remainder=True)
  sampler = grain.samplers.IndexSampler(num_records=n, shard_options=shard, shuffle=shuffle,
                                        num_epochs=num_epochs, seed=int(seed))
  transform = PatchTransform(source=source, crop_size=crop_size, crop_mode=crop_mode,
                             random_flip=random_flip, random_rot90=random_rot90,
                             channel_shuffle=float(channel_shuffle), lr_scale=lr_scale,
                             degradation=degradation, sigma=sigma)
  if read_options is None:
    read_options = grain.ReadOptions(num_threads=4, prefetch_buffer_size=max(32, 2 * batch_size))
  if worker_count:
    _allow_grain_workers()
  return grain.DataLoader(
      data_source=_Keyed(source), sampler=sampler, shard_options=shard,
      operations=[transform, grain.transforms.Batch(batch_size=int(batch_size),
                                                    drop_remainder=drop_remainder,
                                                    batch_fn=StackBatch())],
      worker_count=worker_count, read_options=read_options)


# ---------------------------------------------------------------------------------------------
# Iterator state


def iterator_save_args(it: grain.DataLoaderIterator) -> Any:
  """Orbax args saving `it`'s position: an item of `ocp.args.Composite(...)`."""
  return grain.checkpoint.CheckpointSave(it)


def iterator_restore_args(it: grain.DataLoaderIterator) -> Any:
  """Orbax args restoring a saved position into `it` (in place)."""
  return grain.checkpoint.CheckpointRestore(it)


def save_iterator_state(it: grain.DataLoaderIterator, path: str | os.PathLike) -> None:
  """Write `it.get_state()` (JSON bytes) to `path` atomically (temp file, then os.replace)."""
  state = it.get_state()
  atomic_write(path, lambda f: f.write(state))


def restore_iterator_state(it: grain.DataLoaderIterator, path: str | os.PathLike) -> None:
  """`it.set_state` from a file written by save_iterator_state; `it` then continues from there."""
  with open(os.fspath(path), 'rb') as f:
    it.set_state(f.read())
