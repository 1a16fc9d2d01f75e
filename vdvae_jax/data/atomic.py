"""Atomic file writes: a temporary file in the target's directory, fsynced, then os.replace, so an
interrupted write never leaves a partial file at the target path."""
from __future__ import annotations

import os
import secrets
from typing import BinaryIO, Callable


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], None]) -> None:
  """Call write(f) on a fresh temporary file, then move it to `path` (parents created)."""
  path = os.fspath(path)
  folder = os.path.dirname(path) or '.'
  os.makedirs(folder, exist_ok=True)
  tmp = os.path.join(folder, f'.{os.path.basename(path)}.{secrets.token_hex(6)}.tmp')
  try:
    # O_EXCL: never reuse a file; mode 0o666 lets the umask decide the final permissions.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    with os.fdopen(fd, 'wb') as f:
      write(f)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise
