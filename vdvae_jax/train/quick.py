"""Small models trained on the spot from the demo photographs, for notebooks and demos on CPU.

  params, hps, sr = quick_model('configs/demo.py', 'workdirs/nb_vdvae', steps=60)
Reuses WORKDIR/pretrained when it exists (a finished earlier run)."""
from __future__ import annotations

import os
from typing import Optional

from vdvae_jax.sr.io import load_model
from vdvae_jax.train.config import load_config_file


def quick_model(config_path: str, workdir: str, *, arg: Optional[str] = None,
                steps: Optional[int] = None, init_from: Optional[str] = None, **train):
  """(params, hps, sr) of the model `config_path[:arg]` trained for `steps` in `workdir`."""
  pretrained = os.path.join(workdir, 'pretrained')
  if not os.path.exists(pretrained):
    from vdvae_jax.train.loop import train_and_evaluate
    c = load_config_file(config_path, arg)
    if steps is not None:
      c.train.steps = c.train.checkpoint_every = steps
    # No periodic evaluation or sample grids: the caller looks at the model itself.
    c.train.eval_every = c.train.sample_every = 10**9
    if init_from is not None:
      c.init_from = init_from
    c.train.update(train)
    train_and_evaluate(c, workdir)
  return load_model(pretrained)
