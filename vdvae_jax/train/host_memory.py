"""Giving freed host memory back to the operating system.

On CPU, XLA's compiler and the buffers of a step are allocated with malloc, and glibc keeps
freed memory in its heaps, so a process stays as large as its largest moment so far: compiling
the ffhq256 training step leaves ~4.8 GiB that the step's own 4.7 GiB of temporaries then come on
top of, and the ~500 small programs that initialise a model op by op (model/api.init_params)
hold another 0.7 GiB. `release_host_memory` returns that memory between those phases.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
from typing import Optional

import jax
import jax.numpy as jnp


@functools.lru_cache(maxsize=None)
def _malloc_trim() -> Optional[ctypes._CFuncPtr]:
  """glibc's malloc_trim, or None where the C library has none (macOS, musl)."""
  name = ctypes.util.find_library('c')
  try:
    libc = ctypes.CDLL(name)
    fn = libc.malloc_trim
  except (OSError, AttributeError, TypeError):
    return None
  fn.argtypes, fn.restype = [ctypes.c_size_t], ctypes.c_int
  return fn


def release_host_memory(clear_jax_caches: bool = False) -> bool:
  """Collect garbage, optionally drop JAX's compiled-program caches (programs compiled so far
  are recompiled if called again), and return the C heap's free pages to the OS. True where
  memory could be returned (glibc), False where only the garbage collection ran."""
  gc.collect()
  if clear_jax_caches:
    jax.clear_caches()
    gc.collect()
  trim = _malloc_trim()
  if trim is None:
    return False
  trim(0)
  return True


def compile_and_release(jitted, *args):
  """jitted.lower(*args).compile(), then release_host_memory(): the compiler's working memory
  is returned before the program's first run allocates its buffers."""
  compiled = jitted.lower(*args).compile()
  release_host_memory()
  return compiled


class ReleasingCompiler:
  """Calls `jitted`, compiling it ahead of the first call for each argument signature (shapes,
  dtypes, shardings) with compile_and_release, so no compiler memory stays under the buffers
  of the runs. `compiles` counts the programs compiled."""

  def __init__(self, jitted):
    self.jitted = jitted
    self.compiled: dict = {}
    self.compiles = 0
    self._last = None

  @staticmethod
  def _signature(args) -> tuple:
    leaves, treedef = jax.tree.flatten(args)
    return (treedef,) + tuple((jnp.shape(a), jnp.result_type(a), getattr(a, 'sharding', None))
                              for a in leaves)

  def __call__(self, *args):
    # The last program checks its arguments itself (as fast as jit's own dispatch) and raises
    # TypeError, before running anything, when they have another signature; only then is the
    # signature computed in Python (~3 us per array: 14 ms for the ffhq256 train state).
    if self._last is not None:
      try:
        return self._last(*args)
      except TypeError:
        pass
    key = self._signature(args)
    fn = self.compiled.get(key)
    if fn is None:
      fn = self.compiled[key] = compile_and_release(self.jitted, *args)
      self.compiles += 1
    self._last = fn
    return fn(*args)
