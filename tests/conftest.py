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
