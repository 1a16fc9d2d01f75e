"""Train a VDVAE (or, later, a super-resolution model) from an ml_collections config.

  python train.py --config=configs/demo.py --workdir=workdirs/demo
  python train.py --config=configs/ffhq256.py --workdir=runs/ffhq256 --config.train.steps=10000
  python train.py --config=configs/cifar10.py:tiny --workdir=/tmp/tiny

Resumes automatically from the latest checkpoint in --workdir.
"""
import sys

from absl import app, flags
from ml_collections import config_flags

from vdvae_jax.cli import load_config_or_exit, parse_flags, quiet_logs

config_flags.DEFINE_config_file('config', None, 'config file (configs/<name>.py[:variant])',
                                lock_config=True)
flags.DEFINE_string('workdir', None, 'directory for checkpoints, logs and samples')
FLAGS = flags.FLAGS


def main(argv):
  del argv
  quiet_logs()
  from vdvae_jax.errors import USER_ERRORS
  from vdvae_jax.train import train_and_evaluate
  config = load_config_or_exit(FLAGS.config)
  try:
    train_and_evaluate(config, FLAGS.workdir)
  except USER_ERRORS as e:
    print(f'error: {e}', file=sys.stderr)
    sys.exit(2)


if __name__ == '__main__':
  app.run(main, flags_parser=parse_flags)
