"""Writes the demo notebooks (run it after editing the cells here; the .ipynb files are tracked).

  python notebooks/make_notebooks.py
"""
import os

import nbformat as nbf

HERE = os.path.dirname(os.path.abspath(__file__))

SETUP = '''# Setup: works in a clone of the repository (any working directory) and on Colab.
import os, sys, subprocess
IN_COLAB = 'google.colab' in sys.modules
REPO_URL = os.environ.get('VDVAE_JAX_REPO', '')   # on Colab: the URL of your copy of vdvae-jax
if IN_COLAB and not os.path.exists('vdvae-jax'):
    if not REPO_URL:
        raise SystemExit('set VDVAE_JAX_REPO to the git URL of vdvae-jax')
    subprocess.run(['git', 'clone', '-q', REPO_URL, 'vdvae-jax'], check=True)
    subprocess.run([sys.executable, '-m', 'pip', 'install', '-q', '-r', 'vdvae-jax/requirements.txt',
                    '-e', 'vdvae-jax'], check=True)

def repo_root():
    d = os.path.abspath(os.getcwd())
    while d != os.path.dirname(d):
        for cand in (d, os.path.join(d, 'vdvae-jax')):
            if os.path.exists(os.path.join(cand, 'configs', 'demo.py')):
                return cand
        d = os.path.dirname(d)
    raise FileNotFoundError('cannot find the vdvae-jax repository')

ROOT = repo_root()
os.chdir(ROOT)
sys.path.insert(0, ROOT)
OUT = os.environ.get('VDVAE_NOTEBOOK_OUT', os.path.join(ROOT, 'workdirs', 'notebooks'))
os.makedirs(OUT, exist_ok=True)
STEPS = int(os.environ.get('VDVAE_NOTEBOOK_STEPS', '0')) or None  # SR training steps (None: the config's)
DEMO_VDVAE = os.path.join(ROOT, 'pretrained', 'demo')   # committed, made by configs/demo.py
print('repository:', ROOT, '| figures:', OUT)'''


def sampling_notebook():
  cells = [
      nbf.v4.new_markdown_cell(
          '# Unconditional sampling and the latent hierarchy\n\n'
          'Samples at several temperatures, the KL of every decoder block, and latent '
          '*resampling*: keep the top k latent groups of a real image and redraw the rest. The '
          'top groups fix the low frequencies (layout, colours); the lower groups add detail. '
          'This is the observation diverse super-resolution (Prost et al.) rests on.\n\n'
          'Set `CHECKPOINT` to a converted official model (`convert_torch_weights.py`); '
          'without one, the small demo VDVAE committed in `pretrained/demo` is used (32x32 '
          'patches of the built-in photographs, `configs/demo.py`).\n\n'
          '`PIXELS` chooses how pixels come from the discretized mixture of logistics: '
          '`sample` (the official VDVAE sampler, with per-pixel noise), `mean` (the mixture\'s '
          'expected value) or `mode` (its most likely component).'),
      nbf.v4.new_code_cell(SETUP),
      nbf.v4.new_code_cell(
          "import jax, numpy as np\n"
          "from vdvae_jax.model.checkpoint import load_pretrained\n"
          "CHECKPOINT = os.environ.get('VDVAE_CHECKPOINT', '') or DEMO_VDVAE\n"
          "params, hps = load_pretrained(CHECKPOINT)\n"
          "PIXELS = 'mean'\n"
          "print(hps.image_size, 'x', hps.image_size, '|', hps.n_dec_blocks, 'latent groups')"),
      nbf.v4.new_code_cell(
          "from vdvae_jax.evaluate.figures import temperature_grid\n"
          "from vdvae_jax.data.images import save_image\n"
          "grid = temperature_grid(params, hps, [0.1, 0.4, 0.7, 1.0], 6, jax.random.key(0), pixels=PIXELS)\n"
          "save_image(os.path.join(OUT, 'samples.png'), grid)\n"
          "import matplotlib.pyplot as plt\n"
          "plt.figure(figsize=(8, 6)); plt.imshow(grid); plt.axis('off'); plt.title('rows: t = 0.1, 0.4, 0.7, 1.0')"),
      nbf.v4.new_code_cell(
          "from vdvae_jax.data.demo import demo_source\n"
          "from vdvae_jax.data.degradations import imresize\n"
          "from vdvae_jax.evaluate.figures import kl_per_block, plot_kl\n"
          "cat = demo_source('valid')[0]\n"
          "r = hps.image_size\n"
          "crops = np.stack([imresize(cat[y:y + 4 * r, x:x + 4 * r], output_shape=(r, r))\n"
          "                  for y, x in [(0, 0), (100, 150), (150, 60)]])\n"
          "kl = kl_per_block(params, hps, crops)\n"
          "fig = plot_kl(kl, hps); fig.savefig(os.path.join(OUT, 'kl_per_block.png'), dpi=80)"),
      nbf.v4.new_code_cell(
          "from vdvae_jax.evaluate.figures import resampling_grid\n"
          "ks = [1, hps.n_dec_blocks // 3, 2 * hps.n_dec_blocks // 3, hps.n_dec_blocks]\n"
          "grid = resampling_grid(params, hps, crops, ks, temperature=0.8, rng=jax.random.key(1), pixels=PIXELS)\n"
          "save_image(os.path.join(OUT, 'resampling.png'), grid)\n"
          "plt.figure(figsize=(10, 4)); plt.imshow(grid); plt.axis('off')\n"
          "plt.title(f'original | 3 samples keeping the top k groups, k = {ks}')"),
  ]
  return cells


def sr_notebook():
  cells = [
      nbf.v4.new_markdown_cell(
          '# Super-resolution with a VDVAE\n\n'
          'An LR image, bicubic upsampling, several diverse samples, the HR image, the '
          'metrics of the field (PSNR/SSIM on Y, LR-consistency) and a per-pixel std map of '
          'the samples. Set `SR_CHECKPOINT` to a trained SR model (`WORKDIR/pretrained` of '
          '`train.py --config=configs/ffhq_x8.py ...`); without one, a small x4 diverse-SR model '
          'is trained here (2 CPU cores: 4 to 8 minutes) on top of the committed demo VDVAE '
          '(`pretrained/demo`), as README command 1 does.\n\n'
          'SR images take the DMoL mean (`PIXELS`): the minimum-MSE image of the decoder\'s '
          'output distribution; `sample` adds the official sampler\'s per-pixel noise.'),
      nbf.v4.new_code_cell(SETUP),
      nbf.v4.new_code_cell(
          "import jax, numpy as np\n"
          "from vdvae_jax.sr.io import load_model\n"
          "from vdvae_jax.train.quick import quick_model\n"
          "SR_CHECKPOINT = os.environ.get('VDVAE_SR_CHECKPOINT', '')\n"
          "if SR_CHECKPOINT:\n"
          "    params, hps, sr = load_model(SR_CHECKPOINT)\n"
          "else:\n"
          "    params, hps, sr = quick_model('configs/demo_sr.py', os.path.join(OUT, 'sr'), steps=STEPS,\n"
          "                                  progress_bar=False)\n"
          "PIXELS = 'mean'\n"
          "print(sr.method, 'x%d' % sr.scale)"),
      nbf.v4.new_code_cell(
          "from vdvae_jax.data.demo import demo_source\n"
          "from vdvae_jax.data.degradations import degrade, imresize, modcrop\n"
          "from vdvae_jax.evaluate import metrics\n"
          "from vdvae_jax.evaluate.runner import sr_sampler\n"
          "hr = modcrop(demo_source('valid')[0][:128, 96:224], sr.scale)\n"
          "lr = degrade(hr, sr.scale, sr.degradation, sr.sigma or None)\n"
          "bicubic = imresize(lr, scale=sr.scale)\n"
          "samples = sr_sampler(params, hps, sr, n_samples=4, temperature=0.8, seed=0, pixels=PIXELS)(lr)\n"
          "down = lambda im: degrade(im, sr.scale, sr.degradation, sr.sigma or None)\n"
          "for name, im in [('bicubic', bicubic)] + [(f'sample {i}', s) for i, s in enumerate(samples)]:\n"
          "    print(f'{name:9s} PSNR-Y {metrics.psnr_y(im, hr, sr.scale):6.2f}  SSIM-Y '\n"
          "          f'{metrics.ssim_y(im, hr, sr.scale):.3f}  LR-PSNR {metrics.lr_consistency_psnr(im, lr, down):6.2f}')"),
      nbf.v4.new_code_cell(
          "from vdvae_jax.evaluate.figures import std_map\n"
          "from vdvae_jax.data.images import save_image\n"
          "from vdvae_jax.train.logging import tile\n"
          "lr_big = np.repeat(np.repeat(lr, sr.scale, 0), sr.scale, 1)\n"
          "panel = tile(np.stack([lr_big, bicubic, *samples, hr, std_map(samples)])[None])\n"
          "save_image(os.path.join(OUT, 'sr_panel.png'), panel)\n"
          "import matplotlib.pyplot as plt\n"
          "plt.figure(figsize=(14, 3)); plt.imshow(panel); plt.axis('off')\n"
          "plt.title(f'LR | bicubic | 4 samples (t=0.8, pixels={PIXELS}) | HR | per-pixel std')"),
  ]
  return cells


def write(name, cells):
  nb = nbf.v4.new_notebook()
  nb.cells = cells
  nb.metadata['kernelspec'] = {'name': 'python3', 'display_name': 'Python 3', 'language': 'python'}
  nb.metadata['colab'] = {'provenance': []}
  nbf.write(nb, os.path.join(HERE, name))


if __name__ == '__main__':
  write('01_sampling_and_latents.ipynb', sampling_notebook())
  write('02_super_resolution.ipynb', sr_notebook())
