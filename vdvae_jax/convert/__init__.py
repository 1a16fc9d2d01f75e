"""Official PyTorch checkpoints to pretrained-model directories: the state_dict name mapping,
safe torch loading, the conversion pipeline. May import hparams, data and model."""
