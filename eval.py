"""Evaluate VDVAE and super-resolution models, or score any folder of SR images.

  # a trained run (uses WORKDIR/pretrained and WORKDIR/config.json)
  python eval.py --workdir=workdirs/demo_sr
  python eval.py --checkpoint=runs/div2k_x4/pretrained --hr_dir=data/Set5 --temperatures=0.1,0.8
  # unconditional VDVAE: ELBO (nats/dim, bits/dim) on the eval split, per-block KL, sample grids
  python eval.py --workdir=workdirs/demo
  # metrics only: SR outputs of any system against HR images, the same conventions
  python eval.py --hr_dir=data/Set5/HR --sr_dir=results/EDSR/Set5 --scale=4 --output_dir=out
  # where an SR model loses against bicubic (pixel rules, base VDVAE reconstruction, tiling)
  python eval.py --workdir=workdirs/demo_sr --diagnose
  # super-resolve your own LR images, N samples each
  python eval.py --checkpoint=runs/ffhq_x8/pretrained --input_dir=my_lr --output_dir=my_sr

Writes results.json and results.md (a Markdown table per dataset and temperature) and image
grids (LR | bicubic | samples | HR) under --output_dir (default WORKDIR/eval).
"""
import sys

from absl import app, flags

from vdvae_jax.cli import parse_flags, quiet_logs

flags.DEFINE_string('workdir', None, 'a train.py workdir (its pretrained/ and config.json)')
flags.DEFINE_string('checkpoint', None, 'a pretrained-model directory (instead of --workdir)')
flags.DEFINE_string('hr_dir', None, 'folder of HR images to evaluate on / score against')
flags.DEFINE_string('sr_dir', None, 'metrics-only mode: folder of SR images to score')
flags.DEFINE_integer('scale', None, 'metrics-only mode: the SR scale (with a model: must be '
                     'the scale it was trained for)')
flags.DEFINE_enum('degradation', 'bicubic', ['bicubic', 'gaussian'], 'metrics-only mode: LR '
                  'degradation used for LR-consistency')
flags.DEFINE_float('sigma', None, 'metrics-only mode: Gaussian blur sigma')
flags.DEFINE_string('input_dir', None, 'folder of LR images to super-resolve (no HR)')
flags.DEFINE_string('output_dir', None, 'where results go (default WORKDIR/eval)')
flags.DEFINE_list('temperatures', [], 'sampling temperatures (default: 0.1,0.8 for SR models, '
                  '0.1,0.2,...,1.0 for sample grids of unconditional models)')
flags.DEFINE_enum('pixels', 'mean', ['mean', 'mode', 'sample'],
                  'how pixels come from the DMoL: mean (the minimum-MSE image), mode (the most '
                  'likely component), sample (the official VDVAE sampler, adds pixel noise)')
flags.DEFINE_bool('projection', True, 'SR models: also score every temperature after '
                  'LR-consistency back-projection (rows "t=T +projection"; not part of the '
                  'published methods)')
flags.DEFINE_float('psi_temperature', None, 'diverse SR: temperature of the groups predicted '
                   'from the LR image (default: the same as --temperatures; 1.0 = q_psi itself)')
flags.DEFINE_integer('n_samples', 4, 'samples per LR image and temperature')
flags.DEFINE_integer('eval_batches', 0, 'unconditional: number of eval batches (0: the config)')
flags.DEFINE_bool('lpips', True, 'compute LPIPS to the HR image and pairwise diversity')
flags.DEFINE_integer('seed', 0, 'sampling seed')
flags.DEFINE_bool('diagnose', False, 'SR models: take the gap to bicubic apart (pixel rules on the '
                  'same latents, the base VDVAE\'s own reconstruction, colour shift, tiling); '
                  'writes diagnose.json and diagnose.md')
flags.DEFINE_string('base_checkpoint', None, '--diagnose: the pretrained VDVAE the SR model was '
                    'trained from (default: the workdir config\'s init_from)')
FLAGS = flags.FLAGS


def main(argv):
  del argv
  quiet_logs()
  from vdvae_jax.errors import USER_ERRORS
  from vdvae_jax.evaluate.run import run_eval
  try:
    out = run_eval(FLAGS)
  except USER_ERRORS as e:
    print(f'error: {e}', file=sys.stderr)
    sys.exit(2)
  print(out)


if __name__ == '__main__':
  app.run(main, flags_parser=parse_flags)
