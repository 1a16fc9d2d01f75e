"""Run logging on the first host: TensorBoard event files (tensorboardX, no TensorFlow) in
WORKDIR/tb, the same scalars as JSON lines in WORKDIR/metrics.jsonl, and the sample grids as PNG
files in WORKDIR/samples."""
from __future__ import annotations

import json
import os
from typing import Mapping

import jax
import numpy as np

from vdvae_jax.data.images import save_image


class RunLogger:

  def __init__(self, workdir: str):
    self.enabled = jax.process_index() == 0
    self.workdir = workdir
    self.writer = None
    if self.enabled:
      from tensorboardX import SummaryWriter
      self.writer = SummaryWriter(os.path.join(workdir, 'tb'))

  def scalars(self, step: int, values: Mapping[str, float], prefix: str = '') -> None:
    if self.writer is None:
      return
    for k, v in values.items():
      self.writer.add_scalar(prefix + k, float(v), step)
    with open(os.path.join(self.workdir, 'metrics.jsonl'), 'a') as f:
      f.write(json.dumps({'step': step, **{prefix + k: float(v) for k, v in values.items()}}) + '\n')

  def image_grid(self, step: int, name: str, grid: np.ndarray) -> str:
    """grid uint8 [H, W, 3] -> TensorBoard and WORKDIR/samples/<name>_<step>.png."""
    path = os.path.join(self.workdir, 'samples', f'{name}_{step:07d}.png')
    if self.enabled:
      save_image(path, grid)
      self.writer.add_image(name, grid, step, dataformats='HWC')
    return path

  def close(self) -> None:
    if self.writer is not None:
      self.writer.close()


def tile(images: np.ndarray, pad: int = 2) -> np.ndarray:
  """[rows, cols, H, W, 3] uint8 -> one [rows*(H+pad)-pad, cols*(W+pad)-pad, 3] grid, white gaps."""
  r, c, h, w, ch = images.shape
  out = np.full((r * (h + pad) - pad, c * (w + pad) - pad, ch), 255, np.uint8)
  for i in range(r):
    for j in range(c):
      out[i * (h + pad):i * (h + pad) + h, j * (w + pad):j * (w + pad) + w] = images[i, j]
  return out
