"""Shared pieces of the thin entry points (train.py, eval.py, convert_torch_weights.py)."""
from __future__ import annotations

import sys

from absl import flags, logging


def parse_flags(argv: list[str]) -> list[str]:
  """absl flag parsing whose errors (a config typo, a bad override) are one line, exit 2."""
  try:
    return flags.FLAGS(argv)
  except (flags.Error, AttributeError, KeyError, TypeError, ValueError) as e:
    msg = str(e).strip().strip("'\"").replace('\\n', ' ').replace("\\'", "'")
    print(f'error: {msg}', file=sys.stderr)
    sys.exit(2)


def quiet_logs() -> None:
  """Keep INFO chatter (e.g. JAX probing for TPUs) out of the console."""
  logging.set_verbosity(logging.WARNING)


def load_config_or_exit(config_flag):
  """Touch a lazily loaded ml_collections config so that a missing or broken config file is one
  line on stderr (exit 2) instead of a traceback at first use."""
  if config_flag is None:
    print('error: --config is required, e.g. --config=configs/demo.py', file=sys.stderr)
    sys.exit(2)
  try:
    config_flag.keys()
  except OSError as e:
    print('error: ' + ' '.join(str(e).split()), file=sys.stderr)
    sys.exit(2)
  return config_flag
