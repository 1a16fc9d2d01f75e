"""VDVAE hyperparameters: a frozen dataclass, the five official presets, block-string parsing.

Values are those of the official `hps.py` (openai/vdvae @ ea35b49) and, for the per-dataset
preprocessing, of its `data.py`. Library code takes an `HParams`; nothing reads a global.

Block strings (official syntax), comma separated tokens:
  `RxN`  N blocks at resolution R           `RdK`  one block at R, then average-pool by K
  `RmS`  one decoder block at R that first mixes in the state of resolution S (nearest upsampling)
  `R`    one block at R
"""
from __future__ import annotations

import dataclasses
import json
from typing import Any, Mapping, Optional

# ---------------------------------------------------------------------------------------------
# Per-dataset preprocessing (official data.py). The network input is (x + shift) * scale, the loss
# target (t + shift_loss) * scale_loss, with t = floor(x / 8) * 8 for 5-bit targets (ffhq_256 only).
# `input_scale` is what the raw uint8 pixel is multiplied by first: ffhq_1024 is read by torchvision
# as floats in [0, 1], the other sets as 0..255.


@dataclasses.dataclass(frozen=True)
class Preprocessing:
  shift: float
  scale: float
  shift_loss: float = -127.5
  scale_loss: float = 1.0 / 127.5
  low_bit: bool = False       # 5-bit targets and the 5-bit DMoL branch
  input_scale: float = 1.0    # raw uint8 -> the units shift/scale expect


PREPROCESSING: dict[str, Preprocessing] = {
    'cifar10': Preprocessing(shift=-120.63838, scale=1.0 / 64.16736),
    'imagenet32': Preprocessing(shift=-116.2373, scale=1.0 / 69.37404),
    'imagenet64': Preprocessing(shift=-115.92961967, scale=1.0 / 69.37404),
    'ffhq_256': Preprocessing(shift=-112.8666757481, scale=1.0 / 69.84780273, low_bit=True),
    'ffhq_1024': Preprocessing(shift=-0.4387, scale=1.0 / 0.2743, shift_loss=-0.5,
                               scale_loss=2.0, input_scale=1.0 / 255.0),
}


class HParamsError(ValueError):
  """A hyperparameter set that cannot build a VDVAE; the message names the offending token."""


# ---------------------------------------------------------------------------------------------
# Block strings


def parse_layer_string(s: str, *, field: str = 'blocks') -> list[tuple[int, Optional[int]]]:
  """Official `parse_layer_string`: '32x2,32d2,1' -> [(32, None), (32, None), (32, 2), (1, None)]."""
  layers: list[tuple[int, Optional[int]]] = []
  if not s or not s.strip():
    raise HParamsError(f'{field} is empty')
  for tok in s.split(','):
    tok = tok.strip()
    try:
      if 'x' in tok:
        res, num = tok.split('x')
        count = int(num)
        if count < 1:
          raise ValueError
        layers += [(int(res), None)] * count
      elif 'm' in tok:
        res, mixin = (int(a) for a in tok.split('m'))
        layers.append((res, mixin))
      elif 'd' in tok:
        res, down = (int(a) for a in tok.split('d'))
        if down < 2:
          raise ValueError
        layers.append((res, down))
      else:
        layers.append((int(tok), None))
    except ValueError:
      raise HParamsError(f'{field}: cannot parse token {tok!r} (expected RxN, RdK, RmS or R)') from None
    if layers[-1][0] < 1:
      raise HParamsError(f'{field}: token {tok!r} has a non-positive resolution')
  return layers


def parse_width_string(width: int, s: str) -> dict[int, int]:
  """Official `get_width_settings` as a plain dict of the overrides ('512:32,256:64')."""
  out: dict[int, int] = {}
  if not s:
    return out
  for tok in s.split(','):
    parts = tok.strip().split(':')
    try:
      if len(parts) != 2 or not parts[0].strip() or not parts[1].strip():
        raise ValueError
      res, w = int(parts[0]), int(parts[1])
      if res < 1 or w < 1:
        raise ValueError
    except ValueError:
      raise HParamsError(
          f'custom_width_str: cannot parse token {tok!r} (expected RESOLUTION:WIDTH)') from None
    out[res] = w
  return out


def check_encoder_blocks(enc_blocks: str, image_size: int, width_at, bottleneck_multiple: float,
                         field: str = 'enc_blocks') -> set[int]:
  """Check an encoder block string; return the resolutions it produces (image_size included).

  Each token's resolution must be the current spatial size; widths may grow (zero padding) but
  never shrink going down; every bottleneck keeps at least one channel.
  """
  res = image_size
  produced = {res}
  for tok in enc_blocks.split(','):
    for r, down in parse_layer_string(tok, field=field):
      if r != res:
        raise HParamsError(
            f'{field}: token {tok.strip()!r} is at resolution {r}, but the encoder is at {res} '
            f'there (image size {image_size})')
      if int(width_at(r) * bottleneck_multiple) < 1:
        raise HParamsError(f'{field}: token {tok.strip()!r}: bottleneck width rounds to 0')
      if down is not None:
        if res % down:
          raise HParamsError(f'{field}: token {tok.strip()!r}: {res} is not divisible by {down}')
        if width_at(res // down) < width_at(res):
          raise HParamsError(
              f'{field}: token {tok.strip()!r}: width shrinks from {width_at(res)} at {res} to '
              f'{width_at(res // down)} at {res // down} (the encoder can only zero-pad channels)')
        res //= down
        produced.add(res)
  return produced


# ---------------------------------------------------------------------------------------------
# Compute options: how the model computes, never what (same function, same parameters). The names
# live here so that validation needs no model code; model/conv.py and model/scan.py implement them.

CONV_IMPLS = ('lax', 'im2col', 'custom_vjp')          # formulations of the 3x3 convolutions
REMAT_POLICIES = ('recompute_all', 'save_convs')      # what a rematerialised block keeps
DTYPES = ('float32', 'bfloat16')       # compute and parameter dtypes (model/precision.py)


# ---------------------------------------------------------------------------------------------
# The dataclass

ARCHITECTURE_FIELDS = ('image_size', 'image_channels', 'width', 'zdim', 'enc_blocks', 'dec_blocks',
                'bottleneck_multiple', 'num_mixtures', 'no_bias_above', 'custom_width_str',
                'dataset')


@dataclasses.dataclass(frozen=True)
class HParams:
  """Architecture, optimisation and data hyperparameters of one VDVAE (official field names)."""
  # architecture
  image_size: int
  width: int
  zdim: int
  enc_blocks: str
  dec_blocks: str
  dataset: str
  image_channels: int = 3
  bottleneck_multiple: float = 0.25
  num_mixtures: int = 10
  no_bias_above: int = 64
  custom_width_str: str = ''
  # optimisation (official defaults of hps.add_vae_arguments)
  lr: float = 0.00015
  wd: float = 0.0
  adam_beta1: float = 0.9
  adam_beta2: float = 0.9
  adam_eps: float = 1e-8
  grad_clip: float = 200.0
  skip_threshold: float = 400.0
  ema_rate: float = 0.999
  warmup_iters: int = 0
  n_batch: int = 32
  # compute options (not architecture: any value gives the same function and parameters)
  remat: bool = False         # rematerialise every residual block in the backward pass
                              # (same gradients; on XLA:CPU it saves memory only with scan_blocks)
  remat_policy: str = 'recompute_all'  # or 'save_convs': keep conv outputs (model/scan.py)
  scan_blocks: bool = False   # every block in a loop; runs of identical blocks in one lax.scan
  conv_impl: str = 'lax'      # 3x3 convs: 'lax' | 'im2col' | 'custom_vjp' (see model/conv.py)
  # precision (model/precision.py): the same function up to rounding; float32 is the reference
  dtype: str = 'float32'        # compute dtype: 'float32' | 'bfloat16'
  param_dtype: str = 'float32'  # parameter storage: 'float32' | 'bfloat16' (inference only)

  def __post_init__(self):
    self.validate()

  # -- derived structure ---------------------------------------------------------------------
  @property
  def encoder_layers(self) -> list[tuple[int, Optional[int]]]:
    return parse_layer_string(self.enc_blocks, field='enc_blocks')

  @property
  def decoder_layers(self) -> list[tuple[int, Optional[int]]]:
    return parse_layer_string(self.dec_blocks, field='dec_blocks')

  def width_at(self, res: int) -> int:
    """Channels at resolution `res` (custom_width_str, falling back to `width`)."""
    return parse_width_string(self.width, self.custom_width_str).get(res, self.width)

  def bottleneck(self, res: int) -> int:
    return int(self.width_at(res) * self.bottleneck_multiple)

  @property
  def decoder_resolutions(self) -> list[int]:
    return sorted({r for r, _ in self.decoder_layers})

  @property
  def bias_resolutions(self) -> list[int]:
    """Decoder resolutions with a learned starting state `bias_xs` (res <= no_bias_above)."""
    return [r for r in self.decoder_resolutions if r <= self.no_bias_above]

  @property
  def n_enc_blocks(self) -> int:
    return len(self.encoder_layers)

  @property
  def n_dec_blocks(self) -> int:
    return len(self.decoder_layers)

  @property
  def preprocessing(self) -> Preprocessing:
    return PREPROCESSING[self.dataset]

  @property
  def low_bit(self) -> bool:
    """Official `DmolNet.nll`: low_bit iff dataset == 'ffhq_256'."""
    return self.dataset == 'ffhq_256'

  @property
  def ndims(self) -> int:
    return self.image_size * self.image_size * self.image_channels

  # -- checks ----------------------------------------------------------------------------------
  def validate(self) -> None:
    """Raise HParamsError naming the offending token if this set cannot build a VDVAE."""
    if self.dataset not in PREPROCESSING:
      raise HParamsError(f'dataset {self.dataset!r} unknown; one of {sorted(PREPROCESSING)}')
    for name in ('image_size', 'image_channels', 'width', 'zdim', 'num_mixtures'):
      if int(getattr(self, name)) < 1:
        raise HParamsError(f'{name} must be positive, got {getattr(self, name)}')
    if self.remat_policy not in REMAT_POLICIES:
      raise HParamsError(f'remat_policy must be one of {REMAT_POLICIES}, '
                         f'got {self.remat_policy!r}')
    if self.conv_impl not in CONV_IMPLS:
      raise HParamsError(f'conv_impl must be one of {CONV_IMPLS}, got {self.conv_impl!r}')
    for name in ('dtype', 'param_dtype'):
      if getattr(self, name) not in DTYPES:
        raise HParamsError(f'{name} must be one of {DTYPES}, got {getattr(self, name)!r}')
    if self.image_channels != 3:
      raise HParamsError('image_channels must be 3: the discretized mixture of logistics is RGB')
    widths = parse_width_string(self.width, self.custom_width_str)
    w = lambda r: widths.get(r, self.width)  # noqa: E731
    produced = check_encoder_blocks(self.enc_blocks, self.image_size, w, self.bottleneck_multiple)
    # Decoder: every resolution needs an encoder activation; mix-ins come from earlier blocks.
    seen: set[int] = set()
    for tok in self.dec_blocks.split(','):
      for r, mixin in parse_layer_string(tok, field='dec_blocks'):
        if r not in produced:
          raise HParamsError(
              f'dec_blocks: token {tok.strip()!r}: resolution {r} is never produced by enc_blocks '
              f'(encoder resolutions: {sorted(produced)})')
        if mixin is not None:
          if mixin not in seen:
            raise HParamsError(
                f'dec_blocks: token {tok.strip()!r} mixes in resolution {mixin}, which no earlier '
                f'decoder block produces (so far: {sorted(seen)})')
          if r % mixin or r <= mixin:
            raise HParamsError(
                f'dec_blocks: token {tok.strip()!r}: {r} is not a multiple of mix-in {mixin}')
          if w(mixin) < w(r):
            raise HParamsError(
                f'dec_blocks: token {tok.strip()!r}: mix-in width {w(mixin)} at {mixin} is smaller '
                f'than the width {w(r)} at {r}')
        if int(w(r) * self.bottleneck_multiple) < 1:
          raise HParamsError(f'dec_blocks: token {tok.strip()!r}: bottleneck width rounds to 0')
        seen.add(r)
    if self.decoder_layers[-1][0] != self.image_size:
      raise HParamsError(
          f'dec_blocks must end at image_size {self.image_size}; the last token is '
          f'{self.dec_blocks.split(",")[-1].strip()!r}')
    if w(self.image_size) != self.width:
      raise HParamsError(
          f'custom_width_str sets the width at image_size {self.image_size} to '
          f'{w(self.image_size)}, but the output gain/bias and out_conv use width {self.width}')

  # -- (de)serialisation -----------------------------------------------------------------------
  def to_dict(self) -> dict[str, Any]:
    return dataclasses.asdict(self)

  def to_json(self) -> str:
    return json.dumps(self.to_dict(), indent=1, sort_keys=True)

  @classmethod
  def from_dict(cls, d: Mapping[str, Any], *, ignore_unknown: bool = False) -> 'HParams':
    """Build from a dict with our field names; unknown keys are an error unless ignored.

    Accepts the official `H` dict (`ignore_unknown=True`) and the hparams JSON written by the
    golden-set harness ({'architecture': ..., 'H': ...}).
    """
    if 'architecture' in d or 'H' in d:
      merged = dict(d.get('H', {}))
      merged.update(d.get('architecture', {}))
      d, ignore_unknown = merged, True
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - names)
    if unknown and not ignore_unknown:
      close = {k: [n for n in names if n.startswith(k[:3])] for k in unknown}
      raise HParamsError(f'unknown hyperparameter(s) {unknown}; similar known names: {close}')
    missing = [n for n in ARCHITECTURE_FIELDS if n not in d and n in
               ('image_size', 'width', 'zdim', 'enc_blocks', 'dec_blocks', 'dataset')]
    if missing:
      raise HParamsError(f'hyperparameters missing required field(s) {missing}')
    kw = {k: v for k, v in d.items() if k in names and v is not None}
    return cls(**kw)

  @classmethod
  def from_json_file(cls, path: str) -> 'HParams':
    try:
      with open(path) as f:
        d = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
      raise HParamsError(f'{path}: cannot read hyperparameters JSON: {e}') from None
    try:
      return cls.from_dict(d)
    except HParamsError as e:
      raise HParamsError(f'{path}: {e}') from None

  def replace(self, **kw) -> 'HParams':
    return dataclasses.replace(self, **kw)


# ---------------------------------------------------------------------------------------------
# Official presets (hps.py registry; image_size from data.py)

_COMMON = dict(image_channels=3, bottleneck_multiple=0.25, no_bias_above=64, adam_beta1=0.9,
               adam_beta2=0.9, adam_eps=1e-8, warmup_iters=100, wd=0.01)

PRESETS: dict[str, HParams] = {
    'cifar10': HParams(
        **_COMMON, dataset='cifar10', image_size=32, width=384, zdim=16, num_mixtures=10,
        enc_blocks='32x11,32d2,16x6,16d2,8x6,8d2,4x3,4d4,1x3',
        dec_blocks='1x1,4m1,4x2,8m4,8x5,16m8,16x10,32m16,32x21',
        lr=0.0002, grad_clip=200.0, skip_threshold=400.0, ema_rate=0.9999, n_batch=16),
    'imagenet32': HParams(
        **_COMMON, dataset='imagenet32', image_size=32, width=512, zdim=16, num_mixtures=10,
        enc_blocks='32x15,32d2,16x9,16d2,8x8,8d2,4x6,4d4,1x6',
        dec_blocks='1x2,4m1,4x4,8m4,8x9,16m8,16x19,32m16,32x40',
        lr=0.00015, grad_clip=200.0, skip_threshold=300.0, ema_rate=0.999, n_batch=8),
    'imagenet64': HParams(
        **_COMMON, dataset='imagenet64', image_size=64, width=512, zdim=16, num_mixtures=10,
        enc_blocks='64x11,64d2,32x20,32d2,16x9,16d2,8x8,8d2,4x7,4d4,1x5',
        dec_blocks='1x2,4m1,4x3,8m4,8x7,16m8,16x15,32m16,32x31,64m32,64x12',
        lr=0.00015, grad_clip=220.0, skip_threshold=380.0, ema_rate=0.999, n_batch=4),
    'ffhq256': HParams(
        **_COMMON, dataset='ffhq_256', image_size=256, width=512, zdim=16, num_mixtures=10,
        enc_blocks='256x3,256d2,128x8,128d2,64x12,64d2,32x17,32d2,16x7,16d2,8x5,8d2,4x5,4d4,1x4',
        dec_blocks='1x2,4m1,4x3,8m4,8x4,16m8,16x9,32m16,32x21,64m32,64x13,128m64,128x7,256m128',
        lr=0.00015, grad_clip=130.0, skip_threshold=180.0, ema_rate=0.999, n_batch=1),
    'ffhq1024': HParams(
        **_COMMON, dataset='ffhq_1024', image_size=1024, width=16, zdim=16, num_mixtures=2,
        enc_blocks=('1024x1,1024d2,512x3,512d2,256x5,256d2,128x7,128d2,64x10,64d2,32x14,32d2,'
                    '16x7,16d2,8x5,8d2,4x5,4d4,1x4'),
        dec_blocks=('1x2,4m1,4x3,8m4,8x4,16m8,16x9,32m16,32x20,64m32,64x14,128m64,128x7,'
                    '256m128,256x2,512m256,1024m512'),
        custom_width_str='512:32,256:64,128:512,64:512,32:512,16:512,8:512,4:512,1:512',
        lr=0.00007, grad_clip=360.0, skip_threshold=500.0, ema_rate=0.999, n_batch=1),
}


def get_preset(name: str) -> HParams:
  try:
    return PRESETS[name]
  except KeyError:
    raise HParamsError(f'unknown preset {name!r}; one of {sorted(PRESETS)}') from None
