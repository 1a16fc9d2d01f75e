"""README.md and docs/ stay true to the code: every relative link points at an existing file (and
heading), and every `python ...` command they show names an existing script or module, config
and flags, the flags parsed as the script itself parses them. Nothing is run."""
import contextlib
import importlib
import importlib.util
import pathlib
import re
import runpy
import shlex
import sys

import pytest
from absl import flags
from absl import logging  # noqa: F401  (defines its flags, e.g. -v, on import: before any snapshot)

REPO = pathlib.Path(__file__).resolve().parents[1]
PAGES = [REPO / 'README.md'] + sorted((REPO / 'docs').glob('*.md'))
ABSL_SCRIPTS = ('train.py', 'eval.py', 'convert_torch_weights.py')   # absl flags
SKIPPED_MODULES = ('venv',)                                           # python3 -m venv .venv

FENCE = re.compile(r'^```(\w*)\n(.*?)^```', re.S | re.M)
LINK = re.compile(r'\[[^\]]*\]\(([^)\s]+)\)')
INLINE_COMMAND = re.compile(r'`(python3? [^`]+)`')


def _rel(path: pathlib.Path) -> str:
  return str(path.relative_to(REPO))


def prose(text: str) -> str:
  """The page without its fenced code blocks (line numbers kept)."""
  return FENCE.sub(lambda m: '\n' * m.group(0).count('\n'), text)


def links(page: pathlib.Path) -> list[tuple[int, str]]:
  text = prose(page.read_text())
  return [(text.count('\n', 0, m.start()) + 1, m.group(1)) for m in LINK.finditer(text)
          if not re.match(r'[a-z]+:', m.group(1))]


def anchors(page: pathlib.Path) -> set[str]:
  """GitHub's heading anchors: lower case, punctuation dropped, spaces as hyphens."""
  heads = re.findall(r'^#+ (.+)$', prose(page.read_text()), re.M)
  return {re.sub(r'[^\w\- ]', '', h.strip().lower()).replace(' ', '-') for h in heads}


def commands(page: pathlib.Path) -> list[tuple[int, list[str]]]:
  """(line, argv) of every python command in the page's shell code blocks (backslash
  continuations joined, `&&` / `;` chains split, comments dropped) and inline code spans."""
  text = page.read_text()
  lines = []
  for m in FENCE.finditer(text):
    if m.group(1) in ('', 'bash', 'sh', 'shell', 'console'):
      n = text.count('\n', 0, m.start(2)) + 1
      for chunk in re.split(r'(?<!\\)\n', m.group(2)):    # backslash-newline continues a line
        lines.append((n, chunk.replace('\\\n', ' ')))
        n += chunk.count('\n') + 1
  prose_text = prose(text)
  lines += [(prose_text.count('\n', 0, m.start()) + 1, m.group(1))
            for m in INLINE_COMMAND.finditer(prose_text)]
  found = []
  for n, line in lines:
    if not re.search(r'(^|[\s&;|])python3? ', line):
      continue
    segment = []
    for tok in shlex.split(line, comments=True) + ['&&']:
      if tok in ('&&', '||', ';', '|'):
        if segment and segment[0] in ('python', 'python3'):
          found.append((n, segment))
        segment = []
      else:
        segment.append(tok)
  return found


ALL_LINKS = [(p, n, l) for p in PAGES for n, l in links(p)]
ALL_COMMANDS = [(p, n, argv) for p in PAGES for n, argv in commands(p)]


@pytest.mark.parametrize('page,line,target', ALL_LINKS,
                         ids=[f'{_rel(p)}:{n}:{t}' for p, n, t in ALL_LINKS])
def test_relative_link_exists(page, line, target):
  check_link(page, line, target)


def check_link(page: pathlib.Path, line: int, target: str) -> None:
  path, _, anchor = target.partition('#')
  dest = (page.parent / path).resolve() if path else page
  assert dest.exists(), f'{page.name}:{line}: link to {target}: no such file'
  if anchor and dest.suffix == '.md':
    assert anchor in anchors(dest), f'{page.name}:{line}: {target}: no such heading'


@contextlib.contextmanager
def script_flags(script: pathlib.Path):
  """A fresh FlagValues holding exactly the flags `script` defines: its module body runs (under
  another name, so not its main), its flags move out of absl's global FLAGS."""
  before = set(flags.FLAGS)
  runpy.run_path(str(script), run_name='docs_check')
  added = [name for name in flags.FLAGS if name not in before]
  assert all(flags.FLAGS[name].name == name for name in added), 'short flag names: handle them'
  fv = flags.FlagValues()
  try:
    for name in added:
      flag = flags.FLAGS[name]
      delattr(flags.FLAGS, name)
      if hasattr(flag, 'flag_values'):   # ml_collections' config flag defines its overrides there
        flag.flag_values = fv
      fv[name] = flag
    yield fv
  finally:
    for name in added:
      if name in flags.FLAGS:
        delattr(flags.FLAGS, name)


def check_config_file(spec: str, where: str) -> None:
  """configs/NAME.py[:arg] exists and get_config(arg) builds."""
  from vdvae_jax.train.config import load_config_file
  path, _, arg = spec.partition(':')
  assert (REPO / path).is_file(), f'{where}: config {path} does not exist'
  load_config_file(str(REPO / path), arg or None)


def check_command(argv: list[str], where: str, monkeypatch) -> None:
  """Raise AssertionError unless argv (python ...) names what exists, with flags that parse."""
  monkeypatch.chdir(REPO)
  if argv[1] == '-m':
    module, args = argv[2], argv[3:]
    if module in SKIPPED_MODULES:
      return
    if module == 'pytest':
      for a in args:
        if a.endswith('.py') or a.startswith('tests/'):
          assert (REPO / a.split('::')[0]).exists(), f'{where}: {a} does not exist'
      return
    assert importlib.util.find_spec(module) is not None, f'{where}: no module {module}'
    parse = getattr(importlib.import_module(module), 'parse_args', None)
    assert parse is not None, f'{where}: {module} has no parse_args to check its flags with'
    _parse_argparse(parse, args, where)
    return
  script, args = argv[1], argv[2:]
  path = REPO / script
  assert path.is_file(), f'{where}: script {script} does not exist'
  if script in ABSL_SCRIPTS:
    monkeypatch.setattr(sys, 'argv', [script] + args)   # where the config flag finds overrides
    with script_flags(path) as fv:
      try:
        fv([script] + args)
      except Exception as e:  # absl raises many types (flags.Error, KeyError, AttributeError...)
        raise AssertionError(f'{where}: {" ".join(argv)}: {type(e).__name__}: {e}') from None
      if 'config' in fv and fv['config'].present:
        check_config_file(_flag_value(args, 'config'), where)
    return
  parse = runpy.run_path(str(path), run_name='docs_check').get('parse_args')
  assert parse is not None, f'{where}: {script} is neither an absl script nor has parse_args'
  ns = _parse_argparse(parse, args, where)
  if getattr(ns, 'config', ''):
    check_config_file(ns.config, where)


def _flag_value(args: list[str], name: str) -> str:
  """The value of --name=value or --name value in args."""
  for i, a in enumerate(args):
    if a.startswith(f'--{name}='):
      return a.split('=', 1)[1]
    if a == f'--{name}' and i + 1 < len(args):
      return args[i + 1]
  raise AssertionError(f'--{name} has no value in {args}')


def _parse_argparse(parse, args: list[str], where: str):
  try:
    return parse(args)
  except SystemExit as e:
    raise AssertionError(f'{where}: {" ".join(args)}: argparse refused it (exit {e.code})') \
        from None


@pytest.mark.parametrize('page,line,argv', ALL_COMMANDS,
                         ids=[f'{_rel(p)}:{n}:{" ".join(a[:2])}' for p, n, a in ALL_COMMANDS])
def test_command_names_existing_script_config_and_flags(page, line, argv, monkeypatch):
  check_command(argv, f'{_rel(page)}:{line}', monkeypatch)


def test_the_pages_show_the_entry_points():
  shown = {a[1] if a[1] != '-m' else a[2] for _, _, a in ALL_COMMANDS}
  assert {'train.py', 'eval.py', 'convert_torch_weights.py', 'benchmarks/benchmark.py',
          'pytest'} <= shown, shown
  readme = [a for p, _, a in ALL_COMMANDS if p.name == 'README.md']
  assert ['python', 'eval.py', '--workdir=workdirs/demo_sr'] in readme   # the Quickstart chain


@pytest.mark.parametrize('command', [
    'python train.py --config=configs/demo.py --wrokdir=w',                    # unknown flag
    'python train.py --config=configs/demo.py --config.model.widht=64',        # unknown field
    'python train.py --config=configs/nope.py --workdir=w',                    # no such config
    'python train.py --config configs/nope.py --workdir=w',
    'python train.py --config=configs/demo_sr.py:vdvae_sr --config.sr.methd=x',
    'python eval.py --workdir=w --n_sample=4',
    'python convert_torch_weights.py --torch_checkpoint x.th --preset_name ffhq256',
    'python benchmarks/benchmark.py --preset ffhq256 --scann',
    'python benchmarks/benchmark.py --config configs/nope.py --cases train',
    'python benchmarks/nope.py',
    'python -m vdvae_jax.data.make_lr --hr_dir HR --out_dir LR',               # --scale missing
    'python -m pytest tests/test_nope.py',
])
def test_a_wrong_command_fails(command, monkeypatch):
  with pytest.raises(AssertionError):
    check_command(shlex.split(command), 'example', monkeypatch)


def test_a_right_command_passes(monkeypatch):
  check_command(shlex.split('python train.py --config=configs/demo_sr.py:vdvae_sr '
                            '--workdir=w --config.train.steps=3 --config.sr.gate=channel'),
                'example', monkeypatch)


def test_a_broken_link_fails(tmp_path):
  page = tmp_path / 'page.md'
  page.write_text('# A title\n[ok](#a-title) [file](page.md#a-title) [web](https://x.org/y)\n'
                  '[gone](nope.md) [heading](#nowhere)\n```\n[in code](ignored.md)\n```\n')
  found = links(page)
  assert [t for _, t in found] == ['#a-title', 'page.md#a-title', 'nope.md', '#nowhere']
  for line, target in found[:2]:
    check_link(page, line, target)
  for line, target in found[2:]:
    with pytest.raises(AssertionError):
      check_link(page, line, target)
