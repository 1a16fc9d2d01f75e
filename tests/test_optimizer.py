"""The official update rule: clip always, skip (and count) NaN/Inf or too-large norms, AdamW as
torch, LambdaLR warm-up over all iterations, EMA only on applied steps."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from vdvae_jax.train.optimizer import lr_schedule, make_optimizer, skip_state
from vdvae_jax.train.state import TrainState
from vdvae_jax.train.step import make_train_step

HP = dict(lr=0.01, warmup_iters=4, b1=0.9, b2=0.9, eps=1e-8, wd=0.01, grad_clip=1.0,
          skip_threshold=10.0)


def quadratic_loss(scale):
  """loss = scale * sum(w^2) / 2 with a controllable gradient (and NaN/Inf injection)."""
  def loss_fn(params, batch, key):
    del key
    loss = batch['scale'] * 0.5 * jnp.sum(params['w'] ** 2)
    return loss, {}
  return loss_fn


def run_steps(scales, w0):
  tx = make_optimizer(**HP)
  step = jax.jit(make_train_step(quadratic_loss(None), tx, ema_rate=0.5))
  state = TrainState.create({'w': jnp.asarray(w0)}, tx, jax.random.PRNGKey(0))
  history = []
  for s in scales:
    state, m = step(state, {'scale': jnp.float32(s)})
    history.append((np.asarray(state.params['w']), np.asarray(state.ema_params['w']),
                    {k: np.asarray(v) for k, v in m.items()}))
  return state, history


def test_matches_torch_adamw_with_clip_and_warmup():
  w0 = np.array([3.0, -2.0, 0.5], np.float32)
  scales = [1.0, 2.0, 0.5, 1.0, 2.5, 1.0]   # norms stay below skip_threshold
  _, hist = run_steps(scales, w0)
  # The official loop in torch: clip_grad_norm_, AdamW, LambdaLR(linear warm-up), EMA.
  w = torch.tensor(w0, requires_grad=True)
  opt = torch.optim.AdamW([w], lr=HP['lr'], betas=(HP['b1'], HP['b2']), eps=HP['eps'],
                          weight_decay=HP['wd'])
  sched = torch.optim.lr_scheduler.LambdaLR(
      opt, lambda it: 1.0 if it > HP['warmup_iters'] else it / HP['warmup_iters'])
  ema = w0.copy()
  for s, (ours, ours_ema, m) in zip(scales, hist):
    opt.zero_grad()
    (s * 0.5 * (w ** 2).sum()).backward()
    norm = torch.nn.utils.clip_grad_norm_([w], HP['grad_clip']).item()
    opt.step()
    sched.step()
    ema = ema * 0.5 + w.detach().numpy() * 0.5
    np.testing.assert_allclose(m['grad_norm'], norm, rtol=1e-6)
    np.testing.assert_allclose(ours, w.detach().numpy(), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(ours_ema, ema, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize('bad', [np.nan, np.inf, 100.0])
def test_bad_steps_are_skipped_and_counted(bad):
  """NaN/Inf loss+gradients, or a norm above skip_threshold: params, Adam state and EMA stay;
  training goes on; the skip is counted. Below the threshold, clipping applies."""
  w0 = np.array([3.0, -2.0, 0.5], np.float32)
  state, hist = run_steps([1.0, 1.0, bad, 1.0], w0)
  (w1, e1, _), (w2, e2, m2), (w3, e3, m3), (w4, _, m4) = hist
  assert bool(m3['skipped']) and int(m3['skipped_updates']) == 1
  np.testing.assert_array_equal(w3, w2)
  np.testing.assert_array_equal(e3, e2)
  assert not bool(m4['skipped']) and int(m4['skipped_updates']) == 1
  assert np.all(np.isfinite(w4)) and not np.array_equal(w4, w3)
  # The step after the skip equals the step that would have followed without the bad batch
  # except for the learning-rate schedule, which (as LambdaLR) counted the skipped iteration.
  inner = skip_state(state.opt_state).inner
  assert int(inner[1].count) == 3          # Adam's bias-correction count: applied steps only


def test_clipping_below_threshold():
  """Norm 5 (above grad_clip 1, below skip 10): applied, with the gradient scaled to norm 1."""
  tx = make_optimizer(**{**HP, 'warmup_iters': 0})
  params = {'w': jnp.asarray([3.0, 4.0])}
  st = tx.init(params)
  upd, st = tx.update({'w': jnp.asarray([3.0, 4.0])}, st, params, loss=jnp.float32(1.0))
  assert not bool(skip_state(st).last_skipped)
  np.testing.assert_allclose(skip_state(st).grad_norm, 5.0)
  # First Adam step with bias correction: update = -lr * g/|g| (clipped) / (|g|/|g|) + decay.
  g = np.array([3.0, 4.0]) / 5.0
  expected = -HP['lr'] * (g / (np.abs(g) + 1e-8) + HP['wd'] * np.array([3.0, 4.0]))
  np.testing.assert_allclose(upd['w'], expected, rtol=1e-5)


def test_plateau_decay_scales_the_update():
  """With plateau decay, a loss that stops improving halves the step after `patience` windows."""
  tx = make_optimizer(**{**HP, 'warmup_iters': 0, 'skip_threshold': -1.0}, plateau_factor=0.5,
                      plateau_patience=2, plateau_accumulation=1)
  params = {'w': jnp.asarray([1.0, -1.0])}
  st = tx.init(params)
  sizes = []
  for _ in range(6):
    upd, st = tx.update({'w': jnp.asarray([0.1, 0.1])}, st, params, loss=jnp.float32(1.0),
                        value=jnp.float32(1.0))
    sizes.append(float(jnp.abs(upd['w'][0])))
  assert sizes[1] == pytest.approx(sizes[0], rel=1e-3), sizes       # no decay before patience
  assert sizes[-1] <= sizes[0] * 0.5 * (1 + 1e-3), sizes             # decayed at least once


def test_frozen_parameters_take_no_update_and_no_part_in_the_norm():
  """labels='freeze': zero update, no weight decay, no Adam state; the norm (and so clipping and
  skipping) counts the trainable gradients only, as torch's clip_grad_norm_ over parameters
  with requires_grad."""
  tx = make_optimizer(**{**HP, 'warmup_iters': 0}, labels={'a': 'train', 'b': 'freeze'})
  params = {'a': jnp.asarray([3.0, 4.0]), 'b': jnp.asarray([1.0, 2.0, 3.0])}
  st = tx.init(params)
  assert skip_state(st).inner[1].mu.shape == (2,)            # Adam state for 'a' only
  grads = {'a': jnp.asarray([0.3, 0.4]), 'b': jnp.asarray([1e6, 1e6, 1e6])}
  upd, st = tx.update(grads, st, params, loss=jnp.float32(1.0))
  assert not bool(skip_state(st).last_skipped)               # 1e6 in 'b' would exceed 10
  np.testing.assert_allclose(skip_state(st).grad_norm, 0.5, rtol=1e-6)
  np.testing.assert_array_equal(upd['b'], np.zeros(3))
  g = np.array([0.3, 0.4])
  expected = -HP['lr'] * (g / (np.abs(g) + 1e-8) + HP['wd'] * np.array([3.0, 4.0]))
  np.testing.assert_allclose(upd['a'], expected, rtol=1e-5)
  with pytest.raises(ValueError, match='nothing to train'):
    make_optimizer(**HP, labels={'a': 'freeze'}).init({'a': jnp.zeros(2)})
  with pytest.raises(ValueError, match=r"one of \['freeze', 'train'\].*unknown: \['frozen'\]"):
    make_optimizer(**HP, labels={'a': 'frozen'}).init({'a': jnp.zeros(2)})


def test_lr_factors_scale_the_update_of_their_label_only():
  """A label in lr_factors trains at lr * factor (weight decay included); Adam, the norm and the
  clip see its gradients as any trainable one's (VDVAE-SR's fine-tuned decoder)."""
  params = {'a': jnp.asarray([3.0, 4.0]), 'b': jnp.asarray([1.0, 2.0])}
  grads = {'a': jnp.asarray([0.3, 0.4]), 'b': jnp.asarray([0.3, 0.4])}
  plain = make_optimizer(**{**HP, 'warmup_iters': 0})
  scaled = make_optimizer(**{**HP, 'warmup_iters': 0}, labels={'a': 'train', 'b': 'finetune'},
                          lr_factors={'finetune': 0.25})
  u0, s0 = plain.update(grads, plain.init(params), params, loss=jnp.float32(1.0))
  u1, s1 = scaled.update(grads, scaled.init(params), params, loss=jnp.float32(1.0))
  np.testing.assert_array_equal(u1['a'], u0['a'])
  np.testing.assert_allclose(u1['b'], 0.25 * np.asarray(u0['b']), rtol=1e-6)
  assert np.all(np.asarray(u1['b']) != 0)
  np.testing.assert_array_equal(skip_state(s1).grad_norm, skip_state(s0).grad_norm)
  with pytest.raises(ValueError, match='factors > 0'):
    make_optimizer(**HP, lr_factors={'finetune': 0.0})
  with pytest.raises(ValueError, match="unknown: \\['finetune'\\]"):
    make_optimizer(**HP, labels={'a': 'finetune'}).init({'a': jnp.zeros(2)})


def test_cosine_decay_follows_the_formula_and_reaches_zero():
  """decay_steps > 0: warm-up, constant, then lr (1 + cos(pi (k - start) / steps)) / 2 to 0."""
  sched = lr_schedule(1e-3, warmup_iters=10, decay_start=40, decay_steps=20)
  got = np.array([float(sched(k)) for k in (0, 5, 10, 40, 45, 50, 60, 70)])
  want = 1e-3 * np.array([0, 0.5, 1, 1, (1 + np.cos(np.pi / 4)) / 2, 0.5, 0, 0])
  np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-12)
  # Without a decay the schedule is the official warm-up, unchanged.
  np.testing.assert_allclose([float(lr_schedule(1e-3, 10)(k)) for k in (3, 10, 10**6)],
                             [3e-4, 1e-3, 1e-3], rtol=1e-6)
  with pytest.raises(ValueError, match='inside the warm-up'):
    lr_schedule(1e-3, warmup_iters=10, decay_start=5, decay_steps=20)


def test_cosine_decay_scales_the_update():
  """The optimiser's step follows the schedule: at the end of the decay the update is 0."""
  tx = make_optimizer(**{**HP, 'warmup_iters': 0, 'skip_threshold': -1.0, 'wd': 0.0},
                      decay_start=1, decay_steps=2)
  params = {'w': jnp.asarray([1.0, -1.0])}
  st = tx.init(params)
  sizes = []
  for _ in range(4):
    upd, st = tx.update({'w': jnp.asarray([0.1, 0.1])}, st, params, loss=jnp.float32(1.0))
    sizes.append(float(jnp.abs(upd['w'][0])))
  assert sizes[0] == pytest.approx(HP['lr'], rel=1e-4), sizes
  assert sizes[2] == pytest.approx(HP['lr'] / 2, rel=1e-4), sizes      # halfway: cos = 0
  assert sizes[3] == 0.0, sizes
