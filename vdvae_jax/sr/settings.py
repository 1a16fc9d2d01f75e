"""Typed settings of the super-resolution models (the boundary between configs and library)."""
from __future__ import annotations

import dataclasses

from vdvae_jax.hparams import HParams, HParamsError, check_encoder_blocks

METHODS = ('vdvae_sr', 'diverse', 'srcnn', 'cvae')
BASELINES = ('srcnn', 'cvae')


@dataclasses.dataclass(frozen=True)
class SRSettings:
  """method: 'vdvae_sr' (Chira et al.), 'diverse' (Prost et al.), or the course-report baselines
  'srcnn' and 'cvae' (vdvae_jax.sr.baselines; they use only scale, degradation and sigma).

  scale            LR -> HR factor; the LR image is image_size / scale.
  lr_enc_blocks    block string of the LR-encoder, starting at the LR image size (times
                   lr_upsample).
  lr_upsample      the LR-encoder reads the LR image bicubically upsampled by this factor (1:
                   the LR image itself, as in both papers; up to `scale`, a divisor of it), so
                   that its activations reach the resolutions above the LR size (diverse: ky
                   can take the groups there).
  condition        vdvae_sr: which decoder blocks get h + alpha g: 'depth' (blocks 1..num_conditioned,
                   the paper; num_conditioned 0 = the LR-encoder's depth) or 'resolution' (blocks
                   below max_condition_res, the authors' code). Block 0's input is always g_0.
  gate             vdvae_sr: 'scalar' (one alpha per block, the paper) or 'channel'.
  gate_scale       vdvae_sr: alpha_j = gate_scale * a_j with a_j the trained, zero-initialised
                   parameter. Under Adam a parameter moves about lr per step, so the gates can
                   open gate_scale times faster: 1 (the paper, 100k steps) or more for short runs.
  finetune_lr_scale  vdvae_sr: the pretrained decoder trains at model.lr times this, the new
                   parameters (LR-encoder, top prior, gates) at model.lr (the paper: 1).
  ky               diverse: number of top decoder groups predicted from the LR image.
  degradation      how LR images are made from HR ones: 'bicubic' (MATLAB imresize) or
                   'gaussian' (blur with `sigma`, then subsample).
  """
  method: str
  scale: int
  lr_enc_blocks: str
  lr_upsample: int = 1
  condition: str = 'depth'
  num_conditioned: int = 0
  max_condition_res: int = 32
  gate: str = 'scalar'
  gate_scale: float = 1.0
  finetune_lr_scale: float = 1.0
  ky: int = 0
  degradation: str = 'bicubic'
  sigma: float = 0.0

  def lr_size(self, hps: HParams) -> int:
    return hps.image_size // self.scale

  def lr_encoder_size(self, hps: HParams) -> int:
    """Side of the LR-encoder's input: the LR size times lr_upsample."""
    return self.lr_size(hps) * self.lr_upsample

  def lr_resolutions(self, hps: HParams) -> set[int]:
    return check_encoder_blocks(self.lr_enc_blocks, self.lr_encoder_size(hps), hps.width_at,
                                hps.bottleneck_multiple, field='sr.lr_enc_blocks')

  def conditioned_blocks(self, hps: HParams) -> list[int]:
    """vdvae_sr: decoder blocks j >= 1 whose input gets + alpha_j g_j."""
    have = self.lr_resolutions(hps)
    layers = hps.decoder_layers
    if self.condition == 'depth':
      k = self.num_conditioned or len(self.lr_layers())
      return [j for j in range(1, min(k, len(layers) - 1) + 1) if layers[j][0] in have]
    return [j for j in range(1, len(layers))
            if layers[j][0] < self.max_condition_res and layers[j][0] in have]

  def lr_layers(self):
    from vdvae_jax.hparams import parse_layer_string
    return parse_layer_string(self.lr_enc_blocks, field='sr.lr_enc_blocks')

  def max_ky(self, hps: HParams) -> int:
    """Decoder groups at resolutions the LR-encoder reaches (the top of the hierarchy)."""
    have = self.lr_resolutions(hps)
    n = 0
    for r, _ in hps.decoder_layers:
      if r not in have:
        break
      n += 1
    return n

  def validate(self, hps: HParams) -> None:
    if self.method not in METHODS:
      raise HParamsError(f'sr.method must be one of {METHODS}, got {self.method!r}')
    if self.scale < 2 or hps.image_size % self.scale:
      raise HParamsError(f'sr.scale {self.scale} must be >= 2 and divide image_size '
                         f'{hps.image_size}')
    if self.lr_upsample < 1 or self.scale % self.lr_upsample:
      raise HParamsError(f'sr.lr_upsample {self.lr_upsample} must be a divisor of sr.scale '
                         f'{self.scale} (1: the LR-encoder reads the LR image itself)')
    if self.degradation not in ('bicubic', 'gaussian'):
      raise HParamsError(f"sr.degradation must be 'bicubic' or 'gaussian', got {self.degradation!r}")
    if self.degradation == 'gaussian' and self.sigma <= 0:
      raise HParamsError('sr.degradation gaussian needs sr.sigma > 0')
    if self.method in BASELINES:
      if self.method == 'cvae' and hps.image_size != 32:
        raise HParamsError('the cvae baseline is built for 32x32 HR images (CIFAR-10)')
      return
    have = self.lr_resolutions(hps)
    top = hps.decoder_layers[0][0]
    if top not in have:
      raise HParamsError(f'sr.lr_enc_blocks must reach the top decoder resolution {top} '
                         f'(it produces {sorted(have)})')
    if self.method == 'vdvae_sr':
      if self.condition not in ('depth', 'resolution'):
        raise HParamsError(f"sr.condition must be 'depth' or 'resolution', got {self.condition!r}")
      if self.gate not in ('scalar', 'channel'):
        raise HParamsError(f"sr.gate must be 'scalar' or 'channel', got {self.gate!r}")
      if not self.gate_scale > 0:
        raise HParamsError(f'sr.gate_scale must be > 0, got {self.gate_scale}')
      if not self.finetune_lr_scale > 0:
        raise HParamsError(f'sr.finetune_lr_scale must be > 0, got {self.finetune_lr_scale}')
    else:
      if not 0 <= self.ky <= self.max_ky(hps):
        raise HParamsError(
            f'sr.ky = {self.ky} is beyond the LR-encoder\'s reach: it produces resolutions '
            f'{sorted(have)}, which cover the first {self.max_ky(hps)} decoder groups')
