"""What the demo's 8 training photographs support at x4: an MSE-trained EDSR-style CNN.

Not a method of this project: a yardstick for the SR rows of docs/super_resolution.md ("What the
data allows"). The network works at LR resolution (conv 3x3, `--blocks` residual blocks of
`--width` channels with residual scale 0.1, two x2 pixel shuffles; Lim et al. 2017, "EDSR", at
a smaller size), trained with the MSE on random `--patch` x `--patch` HR crops of the demo's
training photographs with the augmentations of configs/demo_sr.py (the 8 symmetries of the
square, a random RGB order), Adam with a cosine decay from `--lr`. It is scored like eval.py
(MATLAB-bicubic LR of the modcropped photograph, PSNR-Y with a `scale`-pixel border shaved,
LR-PSNR) on the whole held-out photographs: in one pass (the whole image as context), and tiled
like the VDVAE methods (8 x 8 LR tiles, overlap 2: the context the demo's SR models have; and
16 x 16, overlap 4: what a VDVAE trained on 64 x 64 patches would have).

  python experiments/sr_cnn_bound.py              # 2000 steps: about 25 minutes on 2 cores
"""
from __future__ import annotations

import argparse
import os
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm import tqdm

from vdvae_jax.data import demo
from vdvae_jax.data.degradations import degrade, imresize, modcrop
from vdvae_jax.data.images import load_image
from vdvae_jax.evaluate.metrics import lr_consistency_psnr, psnr_y, to_uint8
from vdvae_jax.sr.tiling import super_resolve_tiled

SCALE = 4
TILES = ((8, 2), (16, 4))     # (LR tile, overlap): the demo SR models'; a 64x64-patch VDVAE's


class EDSRLike(nn.Module):
  width: int
  blocks: int

  @nn.compact
  def __call__(self, y: jax.Array) -> jax.Array:             # y [B, h, w, 3] in [0, 1]
    h = h0 = nn.Conv(self.width, (3, 3))(y - 0.5)
    for _ in range(self.blocks):
      h = h + 0.1 * nn.Conv(self.width, (3, 3))(nn.relu(nn.Conv(self.width, (3, 3))(h)))
    h = nn.Conv(self.width, (3, 3))(h) + h0
    for _ in range(2):                                        # x2 pixel shuffle, twice
      h = nn.Conv(4 * self.width, (3, 3))(h)
      b, r, c, _ = h.shape
      h = h.reshape(b, r, c, 2, 2, self.width).transpose(0, 1, 3, 2, 4, 5)
      h = h.reshape(b, 2 * r, 2 * c, self.width)
    return nn.Conv(3, (3, 3))(h) + 0.5                        # [B, 4h, 4w, 3]


def batches(images, patch: int, batch: int, rng: np.random.Generator):
  """(LR, HR) float batches in [0, 1]: random crops, a random symmetry and RGB order each."""
  while True:
    hrs = []
    for _ in range(batch):
      img = images[rng.integers(len(images))]
      y0, x0 = rng.integers(0, img.shape[0] - patch + 1), rng.integers(0, img.shape[1] - patch + 1)
      p = np.rot90(img[y0:y0 + patch, x0:x0 + patch], rng.integers(4))
      p = p[:, ::-1] if rng.random() < 0.5 else p
      hrs.append(np.ascontiguousarray(p[..., rng.permutation(3)]))
    hr = np.stack(hrs)
    lr = np.stack([degrade(h, SCALE) for h in hr])
    yield lr.astype(np.float32) / 255, hr.astype(np.float32) / 255


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument('--steps', type=int, default=2000)
  ap.add_argument('--width', type=int, default=64)
  ap.add_argument('--blocks', type=int, default=8)
  ap.add_argument('--patch', type=int, default=96, help='HR crop size (a multiple of 4)')
  ap.add_argument('--batch', type=int, default=16)
  ap.add_argument('--lr', type=float, default=5e-4)
  return ap.parse_args(argv)


def main() -> None:
  args = parse_args()

  train = demo.demo_source('train')
  images = [train[i] for i in range(len(train))]
  data = batches(images, args.patch, args.batch, np.random.default_rng(0))
  net = EDSRLike(args.width, args.blocks)
  params = net.init(jax.random.key(0), next(data)[0])
  opt = optax.adam(optax.cosine_decay_schedule(args.lr, args.steps, 0.02))
  opt_state = opt.init(params)

  @jax.jit
  def step(params, opt_state, lr, hr):
    loss, grads = jax.value_and_grad(lambda p: jnp.mean((net.apply(p, lr) - hr) ** 2))(params)
    updates, opt_state = opt.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  start = time.time()
  for _ in (bar := tqdm(range(args.steps), desc='train')):
    params, opt_state, loss = step(params, opt_state, *next(data))
    bar.set_postfix(mse=f'{float(loss):.5f}', refresh=False)
  print(f'trained {args.steps} steps in {time.time() - start:.0f} s')

  forward = jax.jit(net.apply)

  def sr_u8(lr_u8: np.ndarray) -> np.ndarray:                  # [b, h, w, 3] -> [b, 4h, 4w, 3]
    return np.asarray(forward(params, lr_u8.astype(np.float32) / 255)) * 255

  paths = [os.path.join(demo.skimage_data_dir(), f) for f in demo.HELD_OUT_FILES]
  tiles = ' | '.join(f'CNN, {t}x{t} LR tiles (overlap {o}): PSNR-Y / LR-PSNR' for t, o in TILES)
  print(f'| photograph | bicubic PSNR-Y | CNN, whole image: PSNR-Y / LR-PSNR | {tiles} |')
  print('|---' * (3 + len(TILES)) + '|')
  down = lambda img: degrade(img, SCALE)  # noqa: E731
  for path in paths + demo.other_source_photos():
    hr = modcrop(load_image(path), SCALE)
    lr = degrade(hr, SCALE)
    outs = [to_uint8(sr_u8(lr[None])[0])]
    outs += [to_uint8(super_resolve_tiled(lr, SCALE, t, o, lambda x: sr_u8(x)[:, None])[0])
             for t, o in TILES]
    cells = ' | '.join(f'{psnr_y(x, hr, SCALE):.2f} / {lr_consistency_psnr(x, lr, down):.2f}'
                       for x in outs)
    print(f'| {os.path.basename(path)} | {psnr_y(imresize(lr, scale=SCALE), hr, SCALE):.2f} | '
          f'{cells} |')

if __name__ == '__main__':
  main()
