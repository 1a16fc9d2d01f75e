"""Every notebook runs top to bottom headless on the built-in small models; its figures render."""
import glob
import os

import nbformat
import pytest
from nbclient import NotebookClient

import reference_sets as ref
from vdvae_jax.data.images import load_image

NOTEBOOKS = sorted(glob.glob(str(ref.REPO / 'notebooks' / '*.ipynb')))
FIGURES = {'01_sampling_and_latents.ipynb': ['samples.png', 'kl_per_block.png', 'resampling.png'],
           '02_super_resolution.ipynb': ['sr_panel.png']}


@pytest.fixture(scope='module')
def out_dir(tmp_path_factory):
  """Shared by the notebooks: the second reuses the small VDVAE the first trained."""
  return tmp_path_factory.mktemp('notebooks')


@pytest.mark.slow(seconds=120)
@pytest.mark.parametrize('path', NOTEBOOKS, ids=os.path.basename)
def test_notebook_runs(path, out_dir, monkeypatch):
  tmp_path = out_dir
  monkeypatch.setenv('VDVAE_NOTEBOOK_OUT', str(tmp_path))
  monkeypatch.setenv('VDVAE_NOTEBOOK_STEPS', '20')
  nb = nbformat.read(path, as_version=4)
  NotebookClient(nb, timeout=600, kernel_name='python3',
                 resources={'metadata': {'path': os.path.dirname(path)}}).execute()
  for name in FIGURES[os.path.basename(path)]:
    p = tmp_path / name
    assert p.exists() and p.stat().st_size > 0, name
    img = load_image(p)
    assert img.std() > 1.0, f'{name} is blank'
