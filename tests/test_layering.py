"""The package stays layered: each part imports only the parts below it, so the model and the data
know nothing of SR, training, evaluation or conversion. Imports are read with `ast`, at any depth
(imports inside functions too); nothing is imported to find them."""
import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / 'vdvae_jax'
PARTS = ('hparams', 'data', 'model', 'convert', 'sr', 'train', 'evaluate', 'errors', 'cli')

# What each part may import besides itself: the layers of vdvae_jax/__init__.py. evaluate, and
# errors.py and cli.py (which serve the entry points), sit on top and may import anything.
ALLOWED = {
    'hparams': set(),
    'data': {'hparams'},
    'model': {'hparams'},
    'convert': {'hparams', 'data', 'model'},
    'sr': {'hparams', 'data', 'model'},
    'train': {'hparams', 'data', 'model', 'sr'},
}


def module_name(path: pathlib.Path) -> str:
  rel = path.relative_to(PACKAGE.parent).with_suffix('')
  parts = rel.parts[:-1] if rel.name == '__init__' else rel.parts
  return '.'.join(parts)


def imports(source: str, module: str, is_package: bool = False) -> list[tuple[int, str]]:
  """(line, dotted name) of every module and name `source` imports, at any depth, including
  relative imports and importlib.import_module / __import__ calls with a literal name."""
  package = module if is_package else module.rpartition('.')[0]
  found = []
  for node in ast.walk(ast.parse(source)):
    if isinstance(node, ast.Import):
      found += [(node.lineno, a.name) for a in node.names]
    elif isinstance(node, ast.ImportFrom):
      base = node.module or ''
      if node.level:
        anchor = package.split('.')[:len(package.split('.')) - (node.level - 1)]
        base = '.'.join(anchor + ([base] if base else []))
      found += [(node.lineno, base)] + [(node.lineno, f'{base}.{a.name}') for a in node.names]
    elif (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
          and isinstance(node.args[0].value, str)
          and getattr(node.func, 'attr', getattr(node.func, 'id', None))
          in ('import_module', '__import__')):
      found.append((node.lineno, node.args[0].value))
  return found


def parts_imported(path: pathlib.Path) -> dict[str, int]:
  """{part of vdvae_jax: first line importing it} for one source file."""
  out = {}
  for line, name in imports(path.read_text(), module_name(path), path.name == '__init__.py'):
    bits = name.split('.')
    if bits[0] == 'vdvae_jax' and len(bits) > 1 and bits[1] in PARTS:
      out.setdefault(bits[1], line)
  return out


def part_of(path: pathlib.Path) -> str:
  rel = path.relative_to(PACKAGE)
  return rel.parts[0] if len(rel.parts) > 1 else rel.stem


CHECKED = sorted(p for p in PACKAGE.rglob('*.py') if part_of(p) in ALLOWED)


def test_every_part_is_checked():
  names = {part_of(p) for p in PACKAGE.rglob('*.py')} - {'__init__'}
  assert names <= set(PARTS), f'new parts of vdvae_jax: place them in PARTS / ALLOWED: {names}'
  assert {'hparams', 'data', 'model'} <= {part_of(p) for p in CHECKED}


@pytest.mark.parametrize('path', CHECKED, ids=lambda p: str(p.relative_to(PACKAGE.parent)))
def test_imports_only_lower_layers(path):
  part = part_of(path)
  wrong = {q: line for q, line in parts_imported(path).items()
           if q != part and q not in ALLOWED[part]}
  assert not wrong, ', '.join(
      f'{path.relative_to(PACKAGE.parent)}:{line} imports vdvae_jax.{q}, above {part} '
      f'(it may import {sorted(ALLOWED[part]) or "nothing of the package"})'
      for q, line in sorted(wrong.items()))


def test_the_walker_sees_every_kind_of_import():
  source = '''
import vdvae_jax.train.loop
from vdvae_jax import evaluate
from vdvae_jax.hparams import HParams

def f():
  from vdvae_jax.sr.io import load_model
  from ..convert import convert
  importlib.import_module('vdvae_jax.cli')
  return __import__('vdvae_jax.errors')
'''
  got = [n for _, n in imports(source, 'vdvae_jax.model.checkpoint')]
  for want in ('vdvae_jax.train.loop', 'vdvae_jax.evaluate', 'vdvae_jax.hparams.HParams',
               'vdvae_jax.sr.io.load_model', 'vdvae_jax.convert.convert', 'vdvae_jax.cli',
               'vdvae_jax.errors'):
    assert want in got, (want, got)
  assert [n for _, n in imports('from . import api', 'vdvae_jax.model', True)] == [
      'vdvae_jax.model', 'vdvae_jax.model.api']


def test_compute_option_names_match_the_model():
  """hparams names the compute options (so validation needs no model code); the model
  implements exactly those."""
  from vdvae_jax.hparams import CONV_IMPLS, REMAT_POLICIES
  from vdvae_jax.model import conv, scan
  assert tuple(conv._IMPLS) == CONV_IMPLS
  assert tuple(scan.CHECKPOINT_POLICIES) == REMAT_POLICIES
