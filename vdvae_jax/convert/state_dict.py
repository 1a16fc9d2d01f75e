"""The one mapping between official PyTorch state_dict names and our Flax parameter tree.

Official name (PyTorch layout)                         Flax path (our layout)
  encoder.in_conv.weight          (O,I,kh,kw)         encoder/in_conv/kernel       (kh,kw,I,O)
  encoder.enc_blocks.{i}.c{1-4}.{weight,bias}          encoder/enc_blocks_{i}/c{1-4}/{kernel,bias}
  decoder.gain, decoder.bias      (1,W,1,1)           decoder/gain, decoder/bias   (1,1,1,W)
  decoder.dec_blocks.{i}.{enc,prior,resnet}.c{1-4}.*   decoder/dec_blocks_{i}/{enc,prior,resnet}/c{1-4}/*
  decoder.dec_blocks.{i}.z_proj.{weight,bias}          decoder/dec_blocks_{i}/z_proj/{kernel,bias}
  decoder.bias_xs.{j}             (1,w,r,r)           decoder/bias_xs_{j}          (1,r,r,w)
  decoder.out_net.out_conv.*                           decoder/out_net/*
The list is generated from the hyperparameters in the official state_dict order.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Iterator, Mapping

import numpy as np

from vdvae_jax.hparams import HParams


@dataclasses.dataclass(frozen=True)
class Entry:
  torch_key: str
  torch_shape: tuple[int, ...]
  flax_path: tuple[str, ...]
  kind: str  # 'conv_weight' | 'vector' | 'nchw'

  def to_flax(self, a: np.ndarray) -> np.ndarray:
    if self.kind == 'conv_weight':
      return np.ascontiguousarray(np.transpose(a, (2, 3, 1, 0)))      # OIHW -> HWIO
    if self.kind == 'nchw':
      return np.ascontiguousarray(np.transpose(a, (0, 2, 3, 1)))      # NCHW -> NHWC
    return np.asarray(a)

  def to_torch(self, a: np.ndarray) -> np.ndarray:
    if self.kind == 'conv_weight':
      return np.ascontiguousarray(np.transpose(a, (3, 2, 0, 1)))
    if self.kind == 'nchw':
      return np.ascontiguousarray(np.transpose(a, (0, 3, 1, 2)))
    return np.asarray(a)


def _conv(prefix: str, path: tuple[str, ...], cin: int, cout: int, k: int) -> Iterator[Entry]:
  yield Entry(f'{prefix}.weight', (cout, cin, k, k), path + ('kernel',), 'conv_weight')
  yield Entry(f'{prefix}.bias', (cout,), path + ('bias',), 'vector')


def _block(prefix, path, cin, cmid, cout, use_3x3) -> Iterator[Entry]:
  k = 3 if use_3x3 else 1
  yield from _conv(f'{prefix}.c1', path + ('c1',), cin, cmid, 1)
  yield from _conv(f'{prefix}.c2', path + ('c2',), cmid, cmid, k)
  yield from _conv(f'{prefix}.c3', path + ('c3',), cmid, cmid, k)
  yield from _conv(f'{prefix}.c4', path + ('c4',), cmid, cout, 1)


def state_dict_entries(hps: HParams) -> list[Entry]:
  """Every official state_dict entry for `hps`, in `model.state_dict()` order."""
  out: list[Entry] = []
  w, z = hps.width, hps.zdim
  out += _conv('encoder.in_conv', ('encoder', 'in_conv'), hps.image_channels, w, 3)
  for i, (res, _) in enumerate(hps.encoder_layers):
    wr = hps.width_at(res)
    out += _block(f'encoder.enc_blocks.{i}', ('encoder', f'enc_blocks_{i}'), wr, hps.bottleneck(res),
                  wr, res > 2)
  out.append(Entry('decoder.gain', (1, w, 1, 1), ('decoder', 'gain'), 'nchw'))
  out.append(Entry('decoder.bias', (1, w, 1, 1), ('decoder', 'bias'), 'nchw'))
  for i, (res, _) in enumerate(hps.decoder_layers):
    wr, cw, u3 = hps.width_at(res), hps.bottleneck(res), res > 2
    p, fp = f'decoder.dec_blocks.{i}', ('decoder', f'dec_blocks_{i}')
    out += _block(f'{p}.enc', fp + ('enc',), 2 * wr, cw, 2 * z, u3)
    out += _block(f'{p}.prior', fp + ('prior',), wr, cw, 2 * z + wr, u3)
    out += _conv(f'{p}.z_proj', fp + ('z_proj',), z, wr, 1)
    out += _block(f'{p}.resnet', fp + ('resnet',), wr, cw, wr, u3)
  for j, r in enumerate(hps.bias_resolutions):
    out.append(Entry(f'decoder.bias_xs.{j}', (1, hps.width_at(r), r, r), ('decoder', f'bias_xs_{j}'),
                     'nchw'))
  out += _conv('decoder.out_net.out_conv', ('decoder', 'out_net'), w, 10 * hps.num_mixtures, 1)
  return out


def num_parameters(hps: HParams) -> int:
  return int(sum(np.prod(e.torch_shape) for e in state_dict_entries(hps)))


class StateDictMismatch(ValueError):
  """A state_dict that does not fit the architecture; carries the three lists of problems."""

  def __init__(self, missing, unexpected, wrong_shape, hint: str = ''):
    self.missing, self.unexpected, self.wrong_shape = list(missing), list(unexpected), list(wrong_shape)

    def few(xs, fmt=str):
      shown = ', '.join(fmt(x) for x in xs[:5])
      return shown + (f', ... ({len(xs) - 5} more)' if len(xs) > 5 else '')

    lines = ['state_dict does not match the architecture:']
    if self.missing:
      lines.append(f'  missing keys ({len(self.missing)}): {few(self.missing)}')
    if self.unexpected:
      lines.append(f'  unexpected keys ({len(self.unexpected)}): {few(self.unexpected)}')
    if self.wrong_shape:
      lines.append(f'  wrongly shaped keys ({len(self.wrong_shape)}): ' + few(
          self.wrong_shape, lambda t: f'{t[0]} has {tuple(t[1])}, expected {tuple(t[2])}'))
    if hint:
      lines.append('  ' + hint)
    super().__init__('\n'.join(lines))


def check_state_dict(shapes: Mapping[str, tuple[int, ...]], hps: HParams, hint: str = '') -> None:
  """Raise StateDictMismatch unless `shapes` (key -> shape) is exactly the official set for hps."""
  entries = {e.torch_key: e.torch_shape for e in state_dict_entries(hps)}
  missing = [k for k in entries if k not in shapes]
  unexpected = [k for k in shapes if k not in entries]
  wrong = [(k, tuple(shapes[k]), entries[k]) for k in entries
           if k in shapes and tuple(shapes[k]) != tuple(entries[k])]
  if missing or unexpected or wrong:
    raise StateDictMismatch(missing, unexpected, wrong, hint)


def strip_ddp_prefix(sd: Mapping[str, Any]) -> dict[str, Any]:
  """Official `restore_params(map_ddp=True)`: drop a leading 'module.' from every key that has it."""
  return {(k[7:] if k.startswith('module.') else k): v for k, v in sd.items()}


def state_dict_to_params(sd: Mapping[str, Any], hps: HParams,
                         to_numpy: Callable[[Any], np.ndarray] = np.asarray) -> dict:
  """Official state_dict (PyTorch layouts) -> Flax param tree {'encoder': ..., 'decoder': ...}.

  Strict: every entry is used exactly once with the expected shape (StateDictMismatch otherwise).
  """
  sd = strip_ddp_prefix(sd)
  check_state_dict({k: tuple(np.shape(v)) for k, v in sd.items()}, hps)
  params: dict = {}
  for e in state_dict_entries(hps):
    node = params
    for name in e.flax_path[:-1]:
      node = node.setdefault(name, {})
    node[e.flax_path[-1]] = e.to_flax(np.asarray(to_numpy(sd[e.torch_key]), dtype=np.float32))
  return params


def params_to_state_dict(params: Mapping, hps: HParams) -> dict[str, np.ndarray]:
  """Flax param tree -> official state_dict (numpy, PyTorch layouts, official order)."""
  out = {}
  for e in state_dict_entries(hps):
    node = params
    for name in e.flax_path:
      node = node[name]
    out[e.torch_key] = e.to_torch(np.asarray(node))
  return out
