"""Training losses (loss_fn(params, batch, key) -> (loss, metrics)): the unconditional VDVAE ELBO."""
from __future__ import annotations

from vdvae_jax.data.preprocess import preprocess
from vdvae_jax.hparams import HParams
from vdvae_jax.model.api import standard_normal_eps
from vdvae_jax.model.precision import float32
from vdvae_jax.model.vae import VDVAE


def elbo_loss(hps: HParams):
  """Batch-mean negative ELBO (nats per sub-pixel), posterior sampled with the step's key."""
  model = VDVAE(hps)

  def loss_fn(params, batch, key):
    x, t = preprocess(batch['image'], hps)
    out = model.apply({'params': params}, x, t, standard_normal_eps(key, hps, x.shape[0]))
    out = {k: float32(out[k]) for k in ('elbo', 'distortion', 'rate', 'bits_per_dim')}
    metrics = {k: v.mean() for k, v in out.items()}
    return out['elbo'].mean(), metrics

  return loss_fn


def elbo_eval(hps: HParams):
  """Per-image ELBO terms and per-block KL of a batch (posterior sampled with `key`)."""
  model = VDVAE(hps)

  def eval_fn(params, batch, key):
    x, t = preprocess(batch['image'], hps)
    out = model.apply({'params': params}, x, t, standard_normal_eps(key, hps, x.shape[0]))
    return {k: out[k] for k in ('elbo', 'distortion', 'rate', 'bits_per_dim', 'kl_per_block')}

  return eval_fn
