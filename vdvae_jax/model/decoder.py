"""Top-down decoder (official `vae.DecBlock`, `vae.Decoder`) and its output head.

Decoder state `xs`: {resolution r: [B, r, r, w_r]}. It starts from the learned `bias_xs` for
r <= no_bias_above and from zeros otherwise. Each block at resolution r:
  x      = xs[r] (+ nearest-upsampled xs[mixin][..., :w_r] for a mix-in block)
  q      = enc([x, acts_r])           -> (qm, qv)        posterior, qv = log std
  p      = prior(x)                   -> (pm, pv, x_pp)  prior, plus features added to x
  x      = x + x_pp
  z      = exp(qv) eps + qm           (posterior pass) | exp(pv + ln t) eps + pm  (prior pass)
  kl     = KL(q || p)                 elementwise [B, r, r, zdim]
  xs[r]  = resnet(x + z_proj(z))
Output: px_z = xs[image_size] * gain + bias, then a 1x1 conv to the DMoL parameters.
"""
from __future__ import annotations

import math
from typing import Callable, NamedTuple, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from vdvae_jax.hparams import HParams
from vdvae_jax.model.blocks import Conv2d, block_class, upsample_nearest
from vdvae_jax.model.gaussian import draw_gaussian, gaussian_analytical_kl
from vdvae_jax.model.layout import block_params, run_params
from vdvae_jax.model.precision import broadcast_param, cast, dtypes
from vdvae_jax.model.scan import remat_policy, runs, scan_run


def decoder_runs(layers: list[tuple[int, Optional[int]]]) -> list[tuple[int, int]]:
  """[start, end) of each loop under hps.scan_blocks: runs of blocks at one resolution; a
  mix-in block is a run of its own (its input is formed before the loop)."""
  return runs([r if m is None else (i, m) for i, (r, m) in enumerate(layers)], min_len=1)


class DecoderHooks(NamedTuple):
  """Optional per-block interventions, used by the super-resolution models (None: unchanged).

  block_input(i, x) -> x         replace/modify block i's input state (after the mix-in)
  prior(i, x, pm, pv) -> (pm, pv) replace block i's prior mean / log-std
  latent(i, x) -> z or None      prior pass only: block i's z (None: draw from the prior)

  traced_index: block_input and prior also accept i as a traced int32 scalar (they use jnp ops
  on it and call no Flax module), so the posterior pass can keep its scanned structure
  (hps.scan_blocks); otherwise a hooked pass runs unrolled with Python ints.
  """
  block_input: Optional[Callable] = None
  prior: Optional[Callable] = None
  latent: Optional[Callable] = None
  traced_index: bool = False


class DecBlock(nn.Module):
  hps: HParams
  res: int
  mixin: Optional[int]
  n_blocks: int
  in_scan: bool = False

  def setup(self):
    hps, res = self.hps, self.res
    w, cw, zdim = hps.width_at(res), hps.bottleneck(res), hps.zdim
    use_3x3 = res > 2
    scale = math.sqrt(1.0 / self.n_blocks)
    # Inside a scanned run the scan body is checkpointed as a whole; no per-Block remat there.
    Block = block_class(hps, remat=hps.remat and not self.in_scan)  # noqa: N806
    dtype, param_dtype = dtypes(hps)
    # The posterior and prior are heads: float32 results (model/precision.py).
    self.enc = Block(cw, 2 * zdim, residual=False, use_3x3=use_3x3, float32_result=True)
    self.prior = Block(cw, 2 * zdim + w, residual=False, use_3x3=use_3x3, zero_last=True,
                       float32_result=True)
    self.z_proj = Conv2d(w, 1, scale=scale, dtype=dtype, param_dtype=param_dtype)
    self.resnet = Block(cw, w, residual=True, use_3x3=use_3x3, last_scale=scale)

  def mix_in(self, x: jax.Array, xs: dict[int, jax.Array]) -> jax.Array:
    if self.mixin is None:
      return x
    return x + upsample_nearest(xs[self.mixin][..., :x.shape[-1]], self.res // self.mixin)

  def _prior(self, x):
    z = self.hps.zdim
    feats = self.prior(x)
    pm, pv, x_pp = feats[..., :z], feats[..., z:2 * z], feats[..., 2 * z:]
    return pm, pv, cast(x_pp, dtypes(self.hps)[0])          # x_pp back to the state's dtype

  def posterior(self, x: jax.Array, acts: jax.Array, eps: Optional[jax.Array],
                prior_hook: Optional[Callable] = None):
    """Posterior pass: returns (new state, z, kl). eps=None takes z at the posterior mean."""
    # q(z | x, acts): the block's input is concat(x, acts), taken in parts (blocks.Block)
    qm, qv = jnp.split(self.enc(x, acts), 2, axis=-1)
    pm, pv, x_pp = self._prior(x)
    if prior_hook is not None:
      pm, pv = prior_hook(x, pm, pv)
    x = x + x_pp
    z = draw_gaussian(qm, qv, eps)
    kl = gaussian_analytical_kl(qm, pm, qv, pv)
    x = self.resnet(x + self.z_proj(z))
    return x, z, kl, (qm, qv, pm, pv)

  def prior_step(self, x: jax.Array, *, z: Optional[jax.Array] = None,
                 eps: Optional[jax.Array] = None, log_t: Optional[jax.Array] = None,
                 prior_hook: Optional[Callable] = None):
    """Prior pass: z given, or z = exp(pv + log_t) eps + pm. Returns (new state, z, (pm, pv))."""
    pm, pv, x_pp = self._prior(x)
    if prior_hook is not None:
      pm, pv = prior_hook(x, pm, pv)
    x = x + x_pp
    if z is None:
      if log_t is not None:
        pv = pv + log_t
      z = draw_gaussian(pm, pv, eps)
    x = self.resnet(x + self.z_proj(z))
    return x, z, (pm, pv)


class Decoder(nn.Module):
  hps: HParams

  def setup(self):
    hps = self.hps
    layers = hps.decoder_layers
    self.dec_blocks = [DecBlock(hps, r, m, len(layers)) for r, m in layers]
    dtype, param_dtype = dtypes(hps)
    self.bias_xs = [self.param(f'bias_xs_{j}', nn.initializers.zeros, (1, r, r, hps.width_at(r)),
                               param_dtype)
                    for j, r in enumerate(hps.bias_resolutions)]
    self.gain = self.param('gain', nn.initializers.ones, (1, 1, 1, hps.width), param_dtype)
    self.bias = self.param('bias', nn.initializers.zeros, (1, 1, 1, hps.width), param_dtype)
    # The DMoL head: float32 results (model/precision.py).
    self.out_net = Conv2d(10 * hps.num_mixtures, 1, dtype=dtype, param_dtype=param_dtype,
                          float32_result=True)

  def _initial_xs(self, n: int, dtype) -> dict[int, jax.Array]:
    xs = {r: jnp.broadcast_to(b, (n,) + b.shape[1:]).astype(dtype)
          for r, b in zip(self.hps.bias_resolutions, self.bias_xs)}
    return xs

  def _block_input(self, xs, block: DecBlock, n: int, dtype) -> jax.Array:
    r = block.res
    x = xs[r] if r in xs else jnp.zeros((n, r, r, self.hps.width_at(r)), dtype)
    return block.mix_in(x, xs)

  def final(self, x: jax.Array) -> jax.Array:
    dtype = dtypes(self.hps)[0]
    return x * broadcast_param(self.gain, x.shape, dtype) + broadcast_param(self.bias, x.shape,
                                                                           dtype)

  def _call_block(self, i: int, method: str, *args, **kwargs):
    """Block i's `method`, with its parameters from either layout (model/layout.py)."""
    block = self.dec_blocks[i]
    if self.is_initializing() or f'dec_blocks_{i}' in self.variables['params']:
      return getattr(block, method)(*args, **kwargs)
    free = DecBlock(self.hps, block.res, block.mixin, block.n_blocks, parent=None)
    return free.apply({'params': block_params(self.variables['params'], 'dec_blocks_', i)},
                      *args, method=getattr(DecBlock, method), **kwargs)

  def _hooked_input(self, hooks, i, xs, block, n, dtype):
    x = self._block_input(xs, block, n, dtype)
    if hooks is not None and hooks.block_input is not None:
      x = hooks.block_input(i, x)
    return x

  @staticmethod
  def _prior_hook(hooks, i):
    if hooks is None or hooks.prior is None:
      return None
    return lambda x, pm, pv: hooks.prior(i, x, pm, pv)

  def __call__(self, acts: dict[int, jax.Array], eps: Optional[Sequence[jax.Array]] = None,
               hooks: Optional[DecoderHooks] = None, n_blocks: Optional[int] = None):
    """Posterior pass. Returns px_z [B,R,R,W] and per-block stats: z, kl, qm, qv, pm, pv, x_in
    (the block's input state) and x (its output).

    n_blocks: run only the top blocks [0, n_blocks) (a scanned run that crosses n_blocks is run
    whole) and return (None, their stats): what a consumer of the top groups alone needs."""
    any_act = cast(acts[self.hps.image_size], dtypes(self.hps)[0])
    n, dtype = any_act.shape[0], any_act.dtype
    xs = self._initial_xs(n, dtype)
    stats = []
    scanned = {}
    if self.hps.scan_blocks and (hooks is None or hooks.traced_index) \
        and not self.is_initializing():
      scanned = dict(decoder_runs(self.hps.decoder_layers))
    i = 0
    stop = len(self.dec_blocks) if n_blocks is None else n_blocks
    while i < stop:
      block = self.dec_blocks[i]
      if i in scanned:                       # a run of identical blocks: one scan
        end = scanned[i]
        x, run_stats = self._scan_posterior(i, end, self._block_input(xs, block, n, dtype),
                                            acts[block.res], eps, hooks)
        xs[block.res] = x
        stats += run_stats
        i = end
        continue
      x_in = self._hooked_input(hooks, i, xs, block, n, dtype)
      x, z, kl, (qm, qv, pm, pv) = self._call_block(i, 'posterior', x_in, acts[block.res],
                                                   None if eps is None else eps[i],
                                                   self._prior_hook(hooks, i))
      xs[block.res] = x
      stats.append(dict(z=z, kl=kl, qm=qm, qv=qv, pm=pm, pv=pv, x_in=x_in, x=x))
      i += 1
    if n_blocks is not None and n_blocks < len(self.dec_blocks):
      return None, stats[:n_blocks]
    return self.final(xs[self.hps.image_size]), stats

  def _scan_posterior(self, start: int, end: int, x: jax.Array, acts: jax.Array, eps,
                      hooks: Optional[DecoderHooks] = None):
    """Posterior pass of the identical blocks [start, end) as one lax.scan (hooks, if any, take
    the block index traced)."""
    hps = self.hps
    res = hps.decoder_layers[start][0]
    block = DecBlock(hps, res, None, hps.n_dec_blocks, in_scan=True, parent=None)  # explicit params
    params = run_params(self.variables['params'], 'dec_blocks_', start, end)
    per_block = (jnp.arange(start, end, dtype=jnp.int32),
                 jnp.stack(eps[start:end]) if eps is not None else None)

    def body(x, p, inputs):
      i, e_k = inputs                                        # block index (traced), its noise
      x_in = x if hooks is None or hooks.block_input is None else hooks.block_input(i, x)
      x_out, z, kl, (qm, qv, pm, pv) = block.apply(
          {'params': p}, x_in, acts, e_k, self._prior_hook(hooks, i), method=DecBlock.posterior)
      return x_out, dict(z=z, kl=kl, qm=qm, qv=qv, pm=pm, pv=pv, x_in=x_in, x=x_out)

    x, ys = scan_run(body, x, params, per_block, remat_policy(hps))
    return x, [jax.tree.map(lambda a: a[k], ys) for k in range(end - start)]

  def decode(self, n: int, latents: Sequence[jax.Array] = (),
             eps: Optional[Sequence[Optional[jax.Array]]] = None,
             log_t: Optional[Sequence[Optional[jax.Array]]] = None,
             hooks: Optional[DecoderHooks] = None):
    """Prior pass: blocks [0, len(latents)) use the given z, the rest draw z from the prior with
    eps[i] (None: the prior mean) and log temperature log_t[i] (None: t = 1); hooks.latent may
    supply z for any block instead. Returns px_z, zs."""
    dtype = cast(self.gain, dtypes(self.hps)[0]).dtype
    xs = self._initial_xs(n, dtype)
    zs = []
    for i, block in enumerate(self.dec_blocks):
      x = self._hooked_input(hooks, i, xs, block, n, dtype)
      z = latents[i] if i < len(latents) else None
      if z is None and hooks is not None and hooks.latent is not None:
        z = hooks.latent(i, x)
      if z is not None:
        x, z, _ = self._call_block(i, 'prior_step', x, z=z)
      else:
        x, z, _ = self._call_block(i, 'prior_step', x, eps=None if eps is None else eps[i],
                                   log_t=None if log_t is None else log_t[i],
                                   prior_hook=self._prior_hook(hooks, i))
      xs[block.res] = x
      zs.append(z)
    return self.final(xs[self.hps.image_size]), zs

  def dmol_params(self, px_z: jax.Array) -> jax.Array:
    """Official `DmolNet.forward`: 1x1 conv width -> 10K, NHWC."""
    return self.out_net(px_z)
