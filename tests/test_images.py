"""Tests of vdvae_jax.data.images (safe reading / listing / atomic writing) and of the make_lr
command, on real photographs from scikit-image and on deliberately broken files."""
from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

from vdvae_jax.data import make_lr
from vdvae_jax.data.degradations import degrade
from vdvae_jax.data.images import ImageError, list_images, load_image, save_image


@pytest.fixture(scope='module')
def rgb() -> np.ndarray:
  return skdata.coffee()[:40, :56]  # [40, 56, 3] uint8


def write_png(path, array) -> str:
  Image.fromarray(array).save(path, format='PNG')
  return str(path)


# ---------------------------------------------------------------------------------------------
# Good files: conversions.


@pytest.mark.parametrize('ext,fmt,kw', [('.png', 'PNG', {}), ('.bmp', 'BMP', {}),
                                        ('.webp', 'WEBP', {'lossless': True})])
def test_lossless_roundtrip(tmp_path, rgb, ext, fmt, kw):
  p = tmp_path / f'a{ext}'
  Image.fromarray(rgb).save(p, format=fmt, **kw)
  out = load_image(p)
  assert out.dtype == np.uint8 and out.shape == rgb.shape
  np.testing.assert_array_equal(out, rgb)


def test_jpeg(tmp_path, rgb):
  p = tmp_path / 'a.JPG'
  Image.fromarray(rgb).save(p, format='JPEG', quality=95)
  out = load_image(p)
  assert out.shape == rgb.shape and np.abs(out.astype(int) - rgb).mean() < 4


def test_grayscale_replicated(tmp_path, rgb):
  g = rgb[..., 1]
  out = load_image(write_png(tmp_path / 'g.png', g))
  assert out.shape == g.shape + (3,)
  for c in range(3):
    np.testing.assert_array_equal(out[..., c], g)
  b = tmp_path / 'b.png'
  Image.fromarray(g > 128).convert('1').save(b)
  out = load_image(b)
  np.testing.assert_array_equal(out[..., 0], np.where(g > 128, 255, 0))


def test_rgba_opaque_drops_alpha(tmp_path, rgb):
  rgba = np.concatenate([rgb, np.full(rgb.shape[:2] + (1,), 255, np.uint8)], -1)
  np.testing.assert_array_equal(load_image(write_png(tmp_path / 'o.png', rgba)), rgb)


def test_rgba_transparent_composited_on_white(tmp_path, rgb):
  a = np.zeros(rgb.shape[:2], np.uint8)
  a[:, 20:40] = 128
  a[:, 40:] = 255
  out = load_image(write_png(tmp_path / 't.png', np.dstack([rgb, a])))
  assert np.all(out[:, :20] == 255)  # fully transparent -> white
  np.testing.assert_array_equal(out[:, 40:], rgb[:, 40:])  # opaque -> colour
  c = rgb[:, 20:40].astype(np.int64)
  np.testing.assert_array_equal(out[:, 20:40], np.floor((c * 128 + 255 * 127) / 255 + 0.5))
  la = np.dstack([rgb[..., 0], a])  # LA follows the same rule
  out = load_image(write_png(tmp_path / 'la.png', la))
  assert np.all(out[:, :20] == 255)
  np.testing.assert_array_equal(out[:, 40:, 2], rgb[:, 40:, 0])


def test_palette(tmp_path, rgb):
  p = Image.fromarray(rgb).convert('P', palette=Image.Palette.ADAPTIVE, colors=16)
  p.save(tmp_path / 'p.png')
  expect = np.asarray(p.convert('RGB'))
  np.testing.assert_array_equal(load_image(tmp_path / 'p.png'), expect)
  index = np.asarray(p)[0, 0]
  p.save(tmp_path / 'pt.png', transparency=int(index))  # one palette entry transparent
  out = load_image(tmp_path / 'pt.png')
  hole = np.asarray(p) == index
  assert np.all(out[hole] == 255)
  np.testing.assert_array_equal(out[~hole], expect[~hole])


def test_16bit_grayscale_png(tmp_path):
  v = np.array([[0, 128, 129, 257], [32767, 32768, 65534, 65535]], np.uint16)
  Image.fromarray(v).save(tmp_path / 'g16.png')  # mode 'I;16'
  assert Image.open(tmp_path / 'g16.png').mode.startswith('I')
  out = load_image(tmp_path / 'g16.png')
  expect = np.floor(v.astype(np.float64) * 255 / 65535 + 0.5).astype(np.uint8)
  np.testing.assert_array_equal(out[..., 0], expect)
  np.testing.assert_array_equal(out[..., 0], out[..., 2])
  assert out[0].tolist() == [[0] * 3, [0] * 3, [1] * 3, [1] * 3]


def test_cmyk_jpeg(tmp_path):
  cmyk = Image.new('CMYK', (24, 16), (0, 200, 255, 30))
  cmyk.save(tmp_path / 'c.jpg', quality=95)
  assert Image.open(tmp_path / 'c.jpg').mode == 'CMYK'
  out = load_image(tmp_path / 'c.jpg')
  assert out.shape == (16, 24, 3)
  expect = np.asarray(cmyk.convert('RGB')).astype(int)
  assert np.abs(out.astype(int) - expect).max() <= 6


# ---------------------------------------------------------------------------------------------
# Bad files: ImageError naming the file.


def expect_error(path, *words):
  with pytest.raises(ImageError) as info:
    load_image(path)
  msg = str(info.value)
  assert msg.startswith(str(path)), msg
  assert os.path.basename(path) in msg
  for w in words:
    assert w in msg, msg
  return msg


def test_missing_and_empty(tmp_path):
  expect_error(tmp_path / 'none.png', 'not found')
  (tmp_path / 'zero.png').write_bytes(b'')
  expect_error(tmp_path / 'zero.png', 'empty (0 bytes)')
  expect_error(tmp_path, 'directory')


def test_truncated_png(tmp_path):
  rng = np.random.default_rng(0)
  noisy = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)  # incompressible: IDAT is large
  raw = open(write_png(tmp_path / 'full.png', noisy), 'rb').read()
  for cut in (len(raw) // 2, len(raw) - 20, 40):
    (tmp_path / 'cut.png').write_bytes(raw[:cut])
    expect_error(tmp_path / 'cut.png', 'truncated or corrupt')
  flipped = bytearray(raw)
  flipped[len(raw) // 2] ^= 0xFF  # CRC mismatch inside IDAT
  (tmp_path / 'flip.png').write_bytes(bytes(flipped))
  expect_error(tmp_path / 'flip.png', 'truncated or corrupt')


def test_truncated_jpeg_and_bmp(tmp_path, rgb):
  Image.fromarray(rgb).save(tmp_path / 'a.jpg', quality=90)
  raw = (tmp_path / 'a.jpg').read_bytes()
  (tmp_path / 'cut.jpg').write_bytes(raw[:len(raw) // 2])
  expect_error(tmp_path / 'cut.jpg', 'truncated or corrupt')
  Image.fromarray(rgb).save(tmp_path / 'a.bmp')
  raw = (tmp_path / 'a.bmp').read_bytes()
  (tmp_path / 'cut.bmp').write_bytes(raw[:len(raw) // 2])
  expect_error(tmp_path / 'cut.bmp', 'truncated or corrupt')


def test_not_an_image(tmp_path):
  (tmp_path / 'noise.png').write_bytes(np.random.default_rng(1).bytes(2000))
  expect_error(tmp_path / 'noise.png', 'not a PNG/JPEG/BMP/WebP image')
  (tmp_path / 'notes.jpg').write_text('this is a text file, not a JPEG\n')
  expect_error(tmp_path / 'notes.jpg', 'not a PNG/JPEG/BMP/WebP image')
  Image.new('RGB', (8, 8)).save(tmp_path / 'gif.png', format='GIF')  # wrong format inside
  expect_error(tmp_path / 'gif.png', 'not a PNG/JPEG/BMP/WebP image')


# ---------------------------------------------------------------------------------------------
# Listing and saving.


def test_list_images(tmp_path, rgb):
  (tmp_path / 'sub' / 'deeper').mkdir(parents=True)
  for rel in ('b.PNG', 'a.jpeg', 'sub/c.webp', 'sub/deeper/d.BMP', 'sub/e.Jpg'):
    (tmp_path / rel).write_bytes(b'x')
  (tmp_path / 'notes.txt').write_text('no')
  (tmp_path / 'sub' / 'f.tif').write_bytes(b'x')
  got = [os.path.relpath(p, tmp_path) for p in list_images(tmp_path)]
  assert got == sorted(got)
  assert set(got) == {'b.PNG', 'a.jpeg', os.path.join('sub', 'c.webp'),
                      os.path.join('sub', 'deeper', 'd.BMP'), os.path.join('sub', 'e.Jpg')}
  flat = [os.path.relpath(p, tmp_path) for p in list_images(tmp_path, recursive=False)]
  assert flat == ['a.jpeg', 'b.PNG']


def test_list_images_errors(tmp_path):
  for path, words in ((tmp_path / 'missing', 'folder not found'),
                      (tmp_path / 'empty', 'no image files')):
    if 'empty' in str(path):
      path.mkdir()
      (path / 'readme.txt').write_text('no images here')
    with pytest.raises(ImageError, match=words) as info:
      list_images(path)
    assert str(info.value).startswith(str(path))
  (tmp_path / 'file.png').write_bytes(b'x')
  with pytest.raises(ImageError, match='not a directory'):
    list_images(tmp_path / 'file.png')


def test_save_image_atomic(tmp_path, rgb, monkeypatch):
  out = tmp_path / 'new' / 'x.png'
  save_image(out, rgb)
  np.testing.assert_array_equal(load_image(out), rgb)
  save_image(out, rgb[::-1])  # replaces in place
  np.testing.assert_array_equal(load_image(out), rgb[::-1])
  assert os.listdir(tmp_path / 'new') == ['x.png']  # no temporary file left
  with pytest.raises(ValueError):
    save_image(tmp_path / 'new' / 'bad.png', rgb.astype(np.float32))
  with pytest.raises(ValueError):
    save_image(tmp_path / 'new' / 'bad.xyz', rgb)

  def broken(self, fp, *args, **kwargs):  # an encoder failing half way through
    fp.write(b'\x89PNG partial')
    raise OSError('simulated encoder failure')

  monkeypatch.setattr(Image.Image, 'save', broken)
  with pytest.raises(OSError, match='simulated'):
    save_image(tmp_path / 'new' / 'y.png', rgb)
  with pytest.raises(OSError, match='simulated'):
    save_image(out, rgb)  # an existing file is left intact
  monkeypatch.undo()
  assert os.listdir(tmp_path / 'new') == ['x.png']
  np.testing.assert_array_equal(load_image(out), rgb[::-1])


# ---------------------------------------------------------------------------------------------
# make_lr command.


def test_make_lr(tmp_path, capsys):
  hr, lr = tmp_path / 'HR', tmp_path / 'LR'
  (hr / 'set').mkdir(parents=True)
  a = skdata.astronaut()[:66, :70]
  b = skdata.chelsea()[:50, :41]
  write_png(hr / 'set' / 'a.png', a)
  Image.fromarray(b).save(hr / 'set' / 'b.jpg', quality=95)
  assert make_lr.main(['--hr_dir', str(hr), '--out_dir', str(lr), '--scale', '4',
                       '--kind', 'bicubic']) == 0
  assert sorted(os.listdir(lr / 'set')) == ['a.png', 'b.png']
  la = load_image(lr / 'set' / 'a.png')
  assert la.shape == (16, 17, 3)
  np.testing.assert_array_equal(la, degrade(a, 4))
  assert load_image(lr / 'set' / 'b.png').shape == (12, 10, 3)

  g = tmp_path / 'LRg'
  assert make_lr.main(['--hr_dir', str(hr), '--out_dir', str(g), '--scale', '3',
                       '--kind', 'gaussian', '--sigma', '1.2']) == 0
  np.testing.assert_array_equal(load_image(g / 'set' / 'a.png'),
                                degrade(a, 3, 'gaussian', sigma=1.2))

  raw = (hr / 'set' / 'a.png').read_bytes()
  (hr / 'set' / 'c.png').write_bytes(raw[:len(raw) // 2])  # truncated: processed last
  bad = tmp_path / 'LRbad'
  capsys.readouterr()
  assert make_lr.main(['--hr_dir', str(hr), '--out_dir', str(bad), '--scale', '4']) == 2
  err = capsys.readouterr().err
  assert 'c.png' in err and 'truncated' in err and 'Traceback' not in err
  assert sorted(os.listdir(bad / 'set')) == ['a.png', 'b.png']  # nothing partial for c


def test_make_lr_errors(tmp_path, capsys):
  assert make_lr.main(['--hr_dir', str(tmp_path / 'nope'), '--out_dir', str(tmp_path / 'o'),
                       '--scale', '2']) == 2
  err = capsys.readouterr().err
  assert 'nope' in err and 'folder not found' in err
  (tmp_path / 'hr').mkdir()
  write_png(tmp_path / 'hr' / 'tiny.png', np.zeros((3, 9, 3), np.uint8))
  assert make_lr.main(['--hr_dir', str(tmp_path / 'hr'), '--out_dir', str(tmp_path / 'o'),
                       '--scale', '4']) == 2
  err = capsys.readouterr().err
  assert 'tiny.png' in err and 'smaller than the scale' in err
  assert make_lr.main(['--hr_dir', str(tmp_path / 'hr'), '--out_dir', str(tmp_path / 'hr' / 'lr'),
                       '--scale', '2']) == 2
  with pytest.raises(SystemExit) as info:  # argparse: --sigma needed for gaussian
    make_lr.main(['--hr_dir', 'x', '--out_dir', 'y', '--scale', '2', '--kind', 'gaussian'])
  assert info.value.code == 2
