"""Orbax checkpoints of a training run: train state + data-iterator position, one step each.

WORKDIR/checkpoints/<step>/{state,data}. Orbax writes a step into a temporary directory and
renames it when complete, so a process killed mid-save leaves the previous step restorable; the
unfinished directory is ignored (and cleaned up) by the next run.
"""
from __future__ import annotations

import os
from typing import Any, Optional

import jax
import orbax.checkpoint as ocp

from vdvae_jax.data.pipeline import iterator_restore_args, iterator_save_args
from vdvae_jax.train.config import ConfigError


class RunCheckpointer:

  def __init__(self, workdir: str, keep: int):
    self.directory = os.path.join(os.path.abspath(workdir), 'checkpoints')
    self.manager = ocp.CheckpointManager(
        self.directory, options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True))

  def latest_step(self) -> Optional[int]:
    return self.manager.latest_step()

  def save(self, step: int, state: Any, data_iterator: Any) -> None:
    self.manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                                    data=iterator_save_args(data_iterator)),
                      force=True)

  def restore(self, step: int, target_state: Any, data_iterator: Any) -> Any:
    """Restore into the structure (and shardings) of `target_state`; moves the iterator."""
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, target_state)
    try:
      restored = self.manager.restore(step, args=ocp.args.Composite(
          state=ocp.args.StandardRestore(abstract), data=iterator_restore_args(data_iterator)))
    except (ValueError, KeyError, TypeError) as e:
      raise ConfigError(
          f'{self.directory}/{step} does not fit the train state of this config (was the model, '
          f'the SR setting or model.scan_blocks changed?): {str(e)[:500]}') from None
    return restored['state']

  def close(self) -> None:
    self.manager.wait_until_finished()
    self.manager.close()
