"""Reading, listing and writing 8-bit RGB images safely (Pillow only).

`load_image` returns a [H, W, 3] uint8 array for PNG, JPEG, BMP and WebP files. Conversion rules:
  1, L              grayscale: the value is replicated to R, G and B (1-bit: 0 or 255).
  P                 palette: expanded to RGB; to RGBA first when the palette has a transparency,
                    then the RGBA rule applies.
  RGBA, LA, PA      composited onto a white background with round((c*a + 255*(255 - a)) / 255)
                    (half up). A fully opaque alpha therefore leaves the colours unchanged.
  I;16, I;16B, I    16-bit grayscale PNG: scaled to 8 bits by round(v * 255 / 65535) (half up),
                    then replicated to RGB.
  48-bit RGB PNG    Pillow's decoder itself reduces each 16-bit sample to its high byte (v >> 8)
  64-bit RGBA PNG   before we see it; this differs from round(v * 255 / 65535) by at most 1.
  CMYK, YCbCr, ...  converted with Pillow's `convert('RGB')`.
Animated files give their first frame. EXIF orientation is ignored: pixels come as stored (as
MATLAB's `imread`, which made the SR test sets).

Every failure raises `ImageError` (a ValueError) whose message starts with the path and says what
is wrong: missing, empty (0 bytes), unreadable, not a PNG/JPEG/BMP/WebP image, truncated or
corrupt. Truncation is detected because the image is checked (`verify`) and fully decoded
(`load`) here; this relies on `PIL.ImageFile.LOAD_TRUNCATED_IMAGES` being False (its default),
which this module never changes.
"""
from __future__ import annotations

import io
import os
import struct
import zlib

import numpy as np
from PIL import Image

from vdvae_jax.data.atomic import atomic_write

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.webp')
_FORMATS = ('PNG', 'JPEG', 'BMP', 'WEBP')
# What a broken file can make Pillow raise (besides the OSError family).
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError,
                  struct.error, zlib.error)


class ImageError(ValueError):
  """An image file or folder that cannot be used; the message starts with its path."""


def _read_bytes(path: str) -> bytes:
  try:
    with open(path, 'rb') as f:
      return f.read()
  except FileNotFoundError:
    raise ImageError(f'{path}: file not found') from None
  except IsADirectoryError:
    raise ImageError(f'{path}: is a directory, not an image file') from None
  except PermissionError:
    raise ImageError(f'{path}: permission denied') from None
  except OSError as e:
    raise ImageError(f'{path}: cannot read file ({e.strerror or e})') from None


def _has_signature(data: bytes) -> bool:
  """True when `data` starts like a PNG, JPEG, BMP or WebP file."""
  return (data.startswith((b'\x89PNG\r\n\x1a\n', b'\xff\xd8\xff', b'BM'))
          or (data[:4] == b'RIFF' and data[8:12] == b'WEBP'))


def _open_checked(path: str, data: bytes) -> Image.Image:
  """Identify, verify and fully decode the image held in `data`."""
  try:
    Image.open(io.BytesIO(data), formats=_FORMATS).verify()  # PNG: chunk CRCs up to IEND
    img = Image.open(io.BytesIO(data), formats=_FORMATS)  # verify() leaves the file unusable
    img.load()
  except Image.UnidentifiedImageError:
    if _has_signature(data):  # right magic bytes, but the header is cut or damaged
      raise ImageError(f'{path}: truncated or corrupt image (cannot parse the header)') from None
    raise ImageError(f'{path}: not a PNG/JPEG/BMP/WebP image (cannot identify the file)') from None
  except Image.DecompressionBombError as e:
    raise ImageError(f'{path}: image too large ({e})') from None
  except _DECODE_ERRORS as e:
    raise ImageError(f'{path}: truncated or corrupt image ({e})') from None
  return img


def _composite_on_white(rgba: np.ndarray) -> np.ndarray:
  """[H, W, 4] uint8 -> [H, W, 3] uint8, colours blended over white by the alpha."""
  c = rgba[..., :3].astype(np.int32)  # [H, W, 3]
  a = rgba[..., 3:].astype(np.int32)  # [H, W, 1]
  return ((c * a + 255 * (255 - a) + 127) // 255).astype(np.uint8)


def to_rgb8(img: Image.Image) -> np.ndarray:
  """A decoded Pillow image -> [H, W, 3] uint8 by the rules of the module docstring."""
  mode = img.mode
  if mode in ('1', 'L'):
    return np.asarray(img.convert('RGB'), dtype=np.uint8)
  if mode == 'P':
    has_alpha = 'transparency' in img.info
    return to_rgb8(img.convert('RGBA' if has_alpha else 'RGB'))
  if mode in ('RGBA', 'LA', 'PA', 'RGBa', 'La'):
    return _composite_on_white(np.asarray(img.convert('RGBA'), dtype=np.uint8))
  if mode.startswith('I;16') or mode == 'I':
    v = np.asarray(img).astype(np.int64)  # [H, W], 0..65535
    v8 = (np.clip(v, 0, 65535) * 255 * 2 + 65535) // (2 * 65535)  # round(v*255/65535), half up
    return np.repeat(v8.astype(np.uint8)[..., None], 3, axis=-1)
  if mode == 'RGB':
    return np.asarray(img, dtype=np.uint8)
  return np.asarray(img.convert('RGB'), dtype=np.uint8)  # CMYK, YCbCr, ...


def load_image(path: str | os.PathLike) -> np.ndarray:
  """Read an image file as [H, W, 3] uint8; raises ImageError naming the file on any problem."""
  path = os.fspath(path)
  data = _read_bytes(path)
  if not data:
    raise ImageError(f'{path}: file is empty (0 bytes)')
  img = _open_checked(path, data)
  try:
    out = to_rgb8(img)
  except (ValueError, OSError) as e:
    raise ImageError(f'{path}: unsupported image mode {img.mode!r} ({e})') from None
  if out.ndim != 3 or out.shape[-1] != 3 or out.size == 0:
    raise ImageError(f'{path}: unexpected decoded shape {out.shape}')
  return np.ascontiguousarray(out)


def is_image_file(name: str) -> bool:
  """True when the file name has one of IMAGE_EXTENSIONS (case-insensitive)."""
  return name.lower().endswith(IMAGE_EXTENSIONS)


def list_images(folder: str | os.PathLike, recursive: bool = True) -> list[str]:
  """Sorted paths of the image files in `folder` (and its subfolders when recursive).

  Raises ImageError naming the folder when it is missing, not a directory, or holds no image.
  """
  folder = os.fspath(folder)
  if not os.path.exists(folder):
    raise ImageError(f'{folder}: folder not found')
  if not os.path.isdir(folder):
    raise ImageError(f'{folder}: not a directory')
  if recursive:
    paths = [os.path.join(root, name) for root, _, names in os.walk(folder) for name in names]
  else:
    paths = [os.path.join(folder, name) for name in os.listdir(folder)]
  paths = sorted(p for p in paths if is_image_file(p) and os.path.isfile(p))
  if not paths:
    where = ' (searched recursively)' if recursive else ''
    raise ImageError(f'{folder}: no image files ({", ".join(IMAGE_EXTENSIONS)}) found{where}')
  return paths


def save_image(path: str | os.PathLike, array: np.ndarray) -> None:
  """Write a [H, W, 3] uint8 array, format from the extension, atomically.

  The bytes go to a temporary file in the same directory, which then replaces `path`
  (`os.replace`), so an interrupted write never leaves a partial image at `path`. Missing parent
  directories are created.
  """
  path = os.fspath(path)
  array = np.asarray(array)
  if array.dtype != np.uint8 or array.ndim != 3 or array.shape[-1] != 3:
    raise ValueError(f'{path}: save_image needs a [H, W, 3] uint8 array, got {array.dtype} '
                     f'{array.shape}')
  ext = os.path.splitext(path)[1].lower()
  fmt = Image.registered_extensions().get(ext)
  if fmt is None:
    raise ValueError(f'{path}: unknown image extension {ext!r}')
  atomic_write(path, lambda f: Image.fromarray(array).save(f, format=fmt))
