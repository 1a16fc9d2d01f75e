import os
import sys
import tempfile

# Tests run on the CPU; make the local package importable without installation.
os.environ.setdefault('JAX_PLATFORMS', 'cpu')
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# One persistent XLA compilation cache for the whole test session (and the subprocesses it
# starts): the tiny models are compiled once instead of once per test.
os.environ.setdefault('JAX_COMPILATION_CACHE_DIR',
                      os.path.join(tempfile.gettempdir(), 'vdvae_jax_test_xla_cache'))
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS', '0')
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES', '0')


def pytest_configure(config):
  # Under pytest-xdist each worker gets a cache of its own (JAX writes cache entries
  # non-atomically). Workers inherit the controller's environment, and learn their name only
  # after this file is imported; no test module has imported jax yet at this point.
  worker = getattr(config, 'workerinput', {}).get('workerid')
  if worker:
    os.environ['JAX_COMPILATION_CACHE_DIR'] += f'_{worker}'


def pytest_collection_modifyitems(config, items):
  """Files with a test marked `slow` first: xdist's loadfile scheduler hands files out in this
  order, so the longest file runs beside the others instead of alone at the end."""
  slow_files = {item.path for item in items if item.get_closest_marker('slow')}
  items.sort(key=lambda item: item.path not in slow_files)
