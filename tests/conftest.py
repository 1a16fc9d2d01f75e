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

# Most tests compile far longer than they run: LLVM at -O0 halves XLA:CPU compile time (a
# test of the zero-initialised SR gates: 52 s -> 27 s). Numerics are XLA's either way; the
# golden-value tests hold at their tolerances with it. VDVAE_TEST_XLA_OPT=1 turns it off.
O0_FLAG = '--xla_backend_optimization_level=0'
if os.environ.get('VDVAE_TEST_XLA_OPT') != '1' and O0_FLAG not in os.environ.get('XLA_FLAGS', ''):
  os.environ['XLA_FLAGS'] = (os.environ.get('XLA_FLAGS', '') + ' ' + O0_FLAG).strip()

# (Tests that start subprocesses with more XLA_FLAGS append to os.environ['XLA_FLAGS'].)


def optimized_env() -> dict:
  """os.environ without the -O0 flag: for a subprocess that runs long (it trains) more than it
  compiles, where -O0 code costs more than it saves (the demo SR training: 3x slower)."""
  flags = os.environ.get('XLA_FLAGS', '').replace(O0_FLAG, '').strip()
  return dict(os.environ, XLA_FLAGS=flags)


def pytest_configure(config):
  # Under pytest-xdist each worker gets a cache of its own (JAX writes cache entries
  # non-atomically). Workers inherit the controller's environment, and learn their name only
  # after this file is imported; no test module has imported jax yet at this point.
  worker = getattr(config, 'workerinput', {}).get('workerid')
  if worker:
    os.environ['JAX_COMPILATION_CACHE_DIR'] += f'_{worker}'


def pytest_collection_modifyitems(config, items):
  """Files with tests marked `slow` first, the longest (the sum of their `slow(seconds=...)`,
  default 60) first: xdist's loadfile scheduler hands files out in this order (with
  --no-loadscope-reorder, see pyproject.toml; its default reorders files by their number of
  tests), so the longest files run beside the others instead of alone at the end."""
  seconds = {}
  for item in items:
    marker = item.get_closest_marker('slow')
    if marker:
      seconds[item.path] = seconds.get(item.path, 0) + marker.kwargs.get('seconds', 60)
  items.sort(key=lambda item: -seconds.get(item.path, 0))
