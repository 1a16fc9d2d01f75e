"""Import official PyTorch VDVAE checkpoints (`*-model.th`, `*-model-ema.th`) into our format.

Loading uses `torch.load(map_location='cpu', weights_only=True)`: a checkpoint can only hold
tensors and containers, never run code. `-model.th` keys carry the DistributedDataParallel prefix
`module.`, `-model-ema.th` keys do not; both are accepted (the official `restore_params` rule).
"""
from __future__ import annotations

import os
import pickle
import zipfile
from typing import Any, Mapping, Optional


from vdvae_jax.convert.state_dict import state_dict_entries, strip_ddp_prefix
from vdvae_jax.hparams import PRESETS, HParams, parse_layer_string


class ConversionError(ValueError):
  """A file that cannot be converted; the message names the file and the problem."""


def load_torch_state_dict(path: str) -> dict[str, Any]:
  """The checkpoint's {name: torch.Tensor}, DDP prefix removed. Refuses anything else."""
  import torch
  if not os.path.exists(path):
    raise ConversionError(f'{path}: no such file')
  if os.path.isdir(path):
    raise ConversionError(f'{path}: is a directory, expected a PyTorch .th/.pt file')
  if os.path.getsize(path) == 0:
    raise ConversionError(f'{path}: file is empty (0 bytes)')
  try:
    obj = torch.load(path, map_location='cpu', weights_only=True, mmap=zipfile.is_zipfile(path))
  except pickle.UnpicklingError as e:
    msg = str(e).split('\n')[0]
    if 'Weights only load failed' in str(e):
      raise ConversionError(
          f'{path}: refused: the file is a pickle that asks to run code or build objects other '
          f'than tensors (weights_only=True). Official checkpoints hold only tensors. ({msg})'
      ) from None
    raise ConversionError(f'{path}: not a PyTorch checkpoint ({msg})') from None
  except Exception as e:  # torch raises many types for damaged files (RuntimeError, EOFError, ...)
    msg = str(e).split('\n')[0]
    kind = 'truncated or corrupt' if zipfile.is_zipfile(path) or 'zip' in msg.lower() else \
        'not a PyTorch checkpoint'
    raise ConversionError(f'{path}: {kind} ({type(e).__name__}: {msg})') from None
  if not isinstance(obj, Mapping):
    raise ConversionError(f'{path}: holds a {type(obj).__name__}, expected a state_dict '
                          '(a dict of parameter name -> tensor)')
  bad = [k for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
  if bad:
    raise ConversionError(f'{path}: not a state_dict: entries {bad[:5]} are not name -> tensor')
  return strip_ddp_prefix(obj)


def preset_fit(shapes: Mapping[str, tuple]) -> list[tuple[str, int, int]]:
  """(preset, entries matching by name and shape, entries of the preset), best first."""
  scores = []
  for name, hps in PRESETS.items():
    entries = state_dict_entries(hps)
    hit = sum(1 for e in entries if tuple(shapes.get(e.torch_key, ())) == tuple(e.torch_shape))
    scores.append((name, hit, len(entries)))
  return sorted(scores, key=lambda s: (s[1] == s[2] == len(shapes), s[1] / max(s[2], len(shapes))),
                reverse=True)


def mismatch_hint(shapes: Mapping[str, tuple], hps: HParams) -> str:
  """'the keys fit preset X' when another preset explains the checkpoint better than `hps`."""
  mine = sum(1 for e in state_dict_entries(hps)
             if tuple(shapes.get(e.torch_key, ())) == tuple(e.torch_shape))
  best, hit, total = preset_fit(shapes)[0]
  if best in PRESETS and PRESETS[best] == hps:
    return ''
  if hit > mine:
    exact = hit == total == len(shapes)
    return (f'the checkpoint fits preset {best!r} {"exactly" if exact else "better"} '
            f'({hit}/{total} entries match, against {mine} for the requested architecture)')
  return ''


# ---------------------------------------------------------------------------------------------
# Architecture inference (--infer_architecture)


def layers_to_string(layers: list[tuple[int, Optional[int]]], decoder: bool) -> str:
  """Inverse of parse_layer_string: runs of plain blocks become RxN."""
  toks: list[str] = []
  i = 0
  while i < len(layers):
    res, extra = layers[i]
    if extra is None:
      j = i
      while j < len(layers) and layers[j] == (res, None):
        j += 1
      toks.append(f'{res}x{j - i}')
      i = j
    else:
      toks.append(f'{res}{"m" if decoder else "d"}{extra}')
      i += 1
  return ','.join(toks)


def _signatures(shapes, block: str) -> list[tuple[int, int]]:
  """(width, kernel size of c2) of every residual block `block.format(i)` in the checkpoint."""
  sig, i = [], 0
  while f'{block.format(i)}.c1.weight' in shapes:
    sig.append((int(shapes[f'{block.format(i)}.c1.weight'][1]),
                int(shapes[f'{block.format(i)}.c2.weight'][-1])))
    i += 1
  return sig


def _refit(layers, template_sig, ckpt_sig, what) -> tuple[list, list[str]]:
  """Change the template's block counts so its per-block signature sequence equals the
  checkpoint's. Within a run of equal signatures the checkpoint cannot say at which resolution
  blocks were added or removed: the change goes to the longest plain repeat in that run."""
  def runs(sig):
    out = []
    for i, s in enumerate(sig):
      if out and out[-1][0] == s:
        out[-1][2] += 1
      else:
        out.append([s, i, 1])
    return out

  t_runs, c_runs = runs(template_sig), runs(ckpt_sig)
  if [r[0] for r in t_runs] != [r[0] for r in c_runs]:
    raise ConversionError(
        f'cannot infer {what}: the checkpoint\'s block widths/kernels '
        f'{[(r[0], r[2]) for r in c_runs]} do not follow the template\'s pattern '
        f'{[(r[0], r[2]) for r in t_runs]}; pass --hparams with the right block strings')
  new, notes = list(layers), []
  for (sig, start, n_t), (_, _, n_c) in reversed(list(zip(t_runs, c_runs))):
    if n_t == n_c:
      continue
    seg = layers[start:start + n_t]
    plain = {}
    for r, extra in seg:
      if extra is None:
        plain[r] = plain.get(r, 0) + 1
    if not plain:
      raise ConversionError(f'cannot infer {what}: no plain block to resize in run {sig}')
    res = max(plain, key=lambda r: plain[r])
    delta = n_c - n_t
    if plain[res] + delta < 0:
      raise ConversionError(f'cannot infer {what}: run {sig} would need {-delta} fewer blocks')
    seg2, changed = [], False
    for item in seg:
      if item == (res, None) and not changed:
        seg2 += [(res, None)] * max(plain[res] + delta, 0)
        changed = True
      elif item == (res, None):
        continue
      else:
        seg2.append(item)
    new[start:start + n_t] = seg2
    notes.append(f'{what}: {n_c} instead of {n_t} blocks of width {sig[0]} '
                 f'({"3x3" if sig[1] == 3 else "1x1"}); assumed the difference is at resolution '
                 f'{res} ({plain[res]} -> {plain[res] + delta} blocks)')
  return new, notes


def infer_hparams(shapes: Mapping[str, tuple], template: HParams) -> tuple[HParams, list[str]]:
  """The architecture the checkpoint's keys and shapes imply, starting from `template`.

  Fixed by the checkpoint: width, zdim, num_mixtures, bottleneck_multiple, the number of encoder
  and decoder blocks and each block's width and kernel size. Not fixed by it (no parameter holds
  them): the resolution of each block inside a run of equal-width blocks, and where the
  down-sampling and mix-in blocks sit; those come from the template.
  """
  need = ['encoder.in_conv.weight', 'decoder.out_net.out_conv.weight',
          'decoder.dec_blocks.0.z_proj.weight', 'encoder.enc_blocks.0.c1.weight']
  missing = [k for k in need if k not in shapes]
  if missing:
    raise ConversionError(f'cannot infer the architecture: keys {missing} are absent')
  width = int(shapes['encoder.in_conv.weight'][0])
  zdim = int(shapes['decoder.dec_blocks.0.z_proj.weight'][1])
  num_mixtures = int(shapes['decoder.out_net.out_conv.weight'][0]) // 10
  c1 = shapes['encoder.enc_blocks.0.c1.weight']
  bottleneck = c1[0] / c1[1]
  hps = template.replace(width=width, zdim=zdim, num_mixtures=num_mixtures,
                         bottleneck_multiple=float(bottleneck))
  notes = []
  sig = lambda layers: [(hps.width_at(r), 3 if r > 2 else 1) for r, _ in layers]  # noqa: E731
  enc, n1 = _refit(hps.encoder_layers, sig(hps.encoder_layers),
                   _signatures(shapes, 'encoder.enc_blocks.{}'), 'enc_blocks')
  dec, n2 = _refit(hps.decoder_layers, sig(hps.decoder_layers),
                   _signatures(shapes, 'decoder.dec_blocks.{}.resnet'), 'dec_blocks')
  notes += n1 + n2
  hps = hps.replace(enc_blocks=layers_to_string(enc, False), dec_blocks=layers_to_string(dec, True))
  assert parse_layer_string(hps.enc_blocks) == enc and parse_layer_string(hps.dec_blocks) == dec
  return hps, notes
