"""The exception types that mean "bad input from the user": entry points print them as one line
(no traceback) and exit with status 2."""
from vdvae_jax.convert.state_dict import StateDictMismatch
from vdvae_jax.data.images import ImageError
from vdvae_jax.data.sources import DatasetNotFoundError, SourceError
from vdvae_jax.hparams import HParamsError
from vdvae_jax.model.checkpoint import CheckpointError
from vdvae_jax.train.config import ConfigError

USER_ERRORS = (ConfigError, HParamsError, CheckpointError, StateDictMismatch, ImageError,
               SourceError, DatasetNotFoundError)
