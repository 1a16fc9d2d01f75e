"""Command: write LR versions of a folder of HR images.

  python -m vdvae_jax.data.make_lr --hr_dir HR --out_dir LR --scale 4 --kind bicubic
  python -m vdvae_jax.data.make_lr --hr_dir HR --out_dir LR --scale 4 --kind gaussian --sigma 1.6

Every image under HR (recursively) is read as RGB, modcropped to a multiple of the scale, degraded
(`degradations.degrade`) and written as PNG under LR with the same relative path (extension .png).
Files are written atomically, so an interrupted run leaves no partial PNG. On a problem (missing
folder, unreadable image, image smaller than the scale) it prints one line naming the file and
exits with code 2.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Optional, Sequence

from tqdm import tqdm

from vdvae_jax.data.degradations import degrade
from vdvae_jax.data.images import ImageError, list_images, load_image, save_image

PROG = 'make_lr'


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
  p = argparse.ArgumentParser(prog=PROG, description=__doc__.split('\n\n')[0])
  p.add_argument('--hr_dir', required=True, help='folder of HR images (searched recursively)')
  p.add_argument('--out_dir', required=True, help='where the LR PNGs go (same relative paths)')
  p.add_argument('--scale', type=int, required=True, help='integer downscaling factor, e.g. 4')
  p.add_argument('--kind', choices=('bicubic', 'gaussian'), default='bicubic',
                 help='bicubic: MATLAB imresize; gaussian: blur then subsample')
  p.add_argument('--sigma', type=float, default=None, help='Gaussian std in HR pixels (gaussian)')
  p.add_argument('--ksize', type=int, default=None,
                 help='odd Gaussian kernel size (default 2 * ceil(3 * sigma) + 1)')
  args = p.parse_args(argv)
  if args.scale < 1:
    p.error(f'--scale must be a positive integer, got {args.scale}')
  if args.kind == 'gaussian' and args.sigma is None:
    p.error('--sigma is required with --kind gaussian')
  if args.kind == 'bicubic' and (args.sigma is not None or args.ksize is not None):
    p.error('--sigma and --ksize only apply to --kind gaussian')
  return args


def output_paths(hr_dir: str, paths: Sequence[str], out_dir: str) -> list[str]:
  """out_dir/<path relative to hr_dir, extension .png>; ImageError when two inputs collide."""
  outs, seen = [], {}
  for path in paths:
    rel = os.path.splitext(os.path.relpath(path, hr_dir))[0] + '.png'
    out = os.path.join(out_dir, rel)
    if out in seen:
      raise ImageError(f'{path}: would write the same output {out} as {seen[out]}')
    seen[out] = path
    outs.append(out)
  return outs


def _inside(path: str, folder: str) -> bool:
  path, folder = os.path.realpath(path), os.path.realpath(folder)
  return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def run(args: argparse.Namespace) -> int:
  """Degrade every image; returns the number written. Raises ImageError / ValueError."""
  paths = list_images(args.hr_dir, recursive=True)
  if _inside(args.out_dir, args.hr_dir):
    raise ImageError(f'{args.out_dir}: out_dir must not be hr_dir or inside it')
  outs = output_paths(args.hr_dir, paths, args.out_dir)
  for path, out in tqdm(list(zip(paths, outs)), desc=PROG, unit='img', file=sys.stderr):
    hr = load_image(path)  # [H, W, 3] uint8
    try:
      lr = degrade(hr, args.scale, args.kind, sigma=args.sigma, ksize=args.ksize)
    except ValueError as e:
      raise ImageError(f'{path}: {e}') from None
    save_image(out, lr)
  return len(paths)


def main(argv: Optional[Sequence[str]] = None) -> int:
  """Entry point; returns the exit status (0 ok, 2 error; argparse errors exit with 2 too)."""
  args = parse_args(argv)
  try:
    n = run(args)
  except (ImageError, OSError) as e:
    print(f'{PROG}: error: {e}', file=sys.stderr)
    return 2
  print(f'{PROG}: wrote {n} LR image(s) to {args.out_dir}', file=sys.stderr)
  return 0


if __name__ == '__main__':
  sys.exit(main())
