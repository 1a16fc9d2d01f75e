"""Shared pieces of the thin entry points (train.py, eval.py, convert_torch_weights.py)."""
from __future__ import annotations

import sys

from absl import flags, logging


def parse_flags(argv: list[str]) -> list[str]:
  """absl flag parsing whose errors (a config typo, a bad override) are one line, exit 2."""
  try:
    return flags.FLAGS(argv)
  except (flags.Error, AttributeError, KeyError, TypeError, ValueError) as e:
    print(f'error: {_one_line(str(e))}', file=sys.stderr)
    sys.exit(2)


def _one_line(msg: str) -> str:
  """A flag error as one line. A config file that raised while loading arrives as ml_collections'
  'flag --config=F: Error whilst parsing config file:' plus a traceback: keep F and the
  exception's own message."""
  msg = msg.strip()
  if len(msg) > 1 and msg[0] == msg[-1] and msg[0] in '\'"':     # KeyError's repr quotes
    msg = msg[1:-1]
  if 'Traceback (most recent call last)' in msg:
    lines = [l for l in msg.splitlines() if l.strip()]
    head = lines[0].split(': Error whilst parsing config file')[0]
    last = lines[-1].split(': ', 1)[-1] if ': ' in lines[-1] else lines[-1]
    msg = f'{head}: {last}'
  return msg.replace('\\n', ' ').replace("\\'", "'")


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
