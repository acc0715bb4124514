"""Training and validation machinery behind `train/train.py` and `train/validate.py`, built on timm."""
from .checkpoint import (
    AtomicCheckpointSaver, atomic_torch_save, atomic_write_text, checkpoint_state_dict, file_sha256,
    find_resume_checkpoint, load_checkpoint_file, load_model_checkpoint, load_model_state,
)
from .config import args_to_dict, load_yaml_config, parse_args_with_config
from .engine import RunClock, evaluate, train_one_epoch
from .errors import CheckpointError, NonFiniteLossError, RunError
from .trainer import build_model, resolve_device, run_training

__all__ = [
    'AtomicCheckpointSaver', 'atomic_torch_save', 'atomic_write_text', 'checkpoint_state_dict', 'file_sha256',
    'find_resume_checkpoint', 'load_checkpoint_file', 'load_model_checkpoint', 'load_model_state',
    'args_to_dict', 'load_yaml_config', 'parse_args_with_config',
    'RunClock', 'evaluate', 'train_one_epoch',
    'CheckpointError', 'NonFiniteLossError', 'RunError',
    'build_model', 'resolve_device', 'run_training',
]
