"""Convert an official VDVAE PyTorch checkpoint to a pretrained-model directory (orbax).

  python convert_torch_weights.py --torch_checkpoint ffhq256-iter-1700000-model-ema.th \
      --preset ffhq256 --output pretrained/ffhq256
  python convert_torch_weights.py --torch_checkpoint ffhq1024-iter-...-model-ema.th \
      --preset ffhq1024 --infer_architecture --output pretrained/ffhq1024
  python convert_torch_weights.py --torch_checkpoint my-model.th --hparams my_hparams.json ...

Load the result with `vdvae_jax.model.checkpoint.load_pretrained(DIR)`.
"""
import sys

from absl import app, flags

from vdvae_jax.cli import parse_flags, quiet_logs

flags.DEFINE_string('torch_checkpoint', None, 'official -model.th or -model-ema.th file')
flags.DEFINE_string('output', None, 'directory to write (must not exist unless --overwrite)')
flags.DEFINE_string('preset', None, 'official hparam set: cifar10, imagenet32, imagenet64, '
                    'ffhq256, ffhq1024')
flags.DEFINE_string('hparams', None, 'JSON file of hyperparameters (instead of --preset)')
flags.DEFINE_bool('infer_architecture', False, 'infer block strings from the checkpoint keys')
flags.DEFINE_bool('overwrite', False, 'replace an existing output directory')
flags.DEFINE_bool('evaluate', True, 'print bits/dim on a built-in image after converting')
FLAGS = flags.FLAGS


def main(argv):
  del argv
  quiet_logs()
  from vdvae_jax.convert.convert import convert
  from vdvae_jax.convert.torch_checkpoint import ConversionError
  from vdvae_jax.hparams import HParams, HParamsError, get_preset
  from vdvae_jax.model.checkpoint import CheckpointError
  try:
    if not FLAGS.torch_checkpoint or not FLAGS.output:
      raise ConversionError('--torch_checkpoint and --output are required')
    if bool(FLAGS.preset) == bool(FLAGS.hparams):
      raise ConversionError('give exactly one of --preset and --hparams')
    hps = get_preset(FLAGS.preset) if FLAGS.preset else HParams.from_json_file(FLAGS.hparams)
    convert(FLAGS.torch_checkpoint, FLAGS.output, hps, infer_architecture=FLAGS.infer_architecture,
            evaluate=FLAGS.evaluate, overwrite=FLAGS.overwrite)
  except (ConversionError, HParamsError, CheckpointError) as e:
    print(f'error: {e}', file=sys.stderr)
    sys.exit(2)


if __name__ == '__main__':
  app.run(main, flags_parser=parse_flags)
