"""Checkpoint I/O: atomic writes, `weights_only=True` loads, and loading errors that say what is wrong.

* Every file is written to a temporary name in the destination directory, flushed to disk, then renamed over
  the target (`os.replace` is atomic on POSIX and Windows), so a run killed at any instant leaves either the
  previous complete file or the new complete file, never a truncated one.
* Checkpoints store plain Python values besides tensors (the run's arguments as a dict, not an
  `argparse.Namespace`), so `torch.load(..., weights_only=True)` reads them without an allow-list.
  Checkpoints written by timm's own train.py (which pickles a Namespace) still load: Namespace is
  allow-listed for them exactly as timm does.
* A truncated file, a checkpoint of another architecture, or one with another number of classes raises
  `CheckpointError` with a one-line message naming the file, the mismatch and the fix.
"""
import argparse
import glob
import hashlib
import logging
import os
import pickle
import shutil
import tempfile
import zipfile
from typing import Any, Dict, List, Optional, Union

import torch
import torch.nn as nn

from timm.models import clean_state_dict
from timm.utils import CheckpointSaver, get_state_dict, unwrap_model

from .errors import CheckpointError

__all__ = [
    'atomic_torch_save', 'atomic_write_text', 'AtomicCheckpointSaver', 'load_checkpoint_file',
    'checkpoint_state_dict', 'load_model_state', 'load_model_checkpoint', 'file_sha256', 'find_resume_checkpoint',
    'remove_stale_temp_files', 'fsync_dir',
]

_logger = logging.getLogger(__name__)

_TMP_TAG = '.tmp-'


def fsync_dir(path: Union[str, 'os.PathLike[str]']) -> None:
    # Makes the rename itself durable; not possible (nor needed) on some platforms / filesystems.
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def current_umask() -> int:
    """The process umask (read without changing it)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _atomic_write(path: str, write_fn) -> None:
    """Call `write_fn(file_object)` on a temporary file next to `path`, fsync it, then rename it to `path`."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp_path = tempfile.mkstemp(prefix='.' + os.path.basename(path) + _TMP_TAG, dir=directory)
    try:
        # mkstemp creates the file private (0600); give it the permissions a plain open() would have.
        os.chmod(tmp_path, 0o666 & ~current_umask())
        with os.fdopen(fd, 'wb') as f:
            write_fn(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        # Also on KeyboardInterrupt: never leave a half-written temporary behind when we can help it.
        try:
            os.unlink(tmp_path)
        except OSError:
            pass
        raise
    fsync_dir(directory)


def atomic_torch_save(obj: Any, path: str) -> None:
    """`torch.save(obj, path)`, atomically (temporary file + fsync + rename)."""
    _atomic_write(path, lambda f: torch.save(obj, f))


def atomic_write_text(path: str, text: str) -> None:
    """Write a text file atomically."""
    _atomic_write(path, lambda f: f.write(text.encode('utf-8')))


def remove_stale_temp_files(directory: str) -> None:
    """Delete temporary files a killed run left behind in `directory` (they are never complete checkpoints)."""
    for path in glob.glob(os.path.join(directory, '.*' + _TMP_TAG + '*')):
        try:
            os.unlink(path)
            _logger.info(f'Removed temporary file {path} left by an interrupted run.')
        except OSError:
            pass


class AtomicCheckpointSaver(CheckpointSaver):
    """timm's `CheckpointSaver` (last / model_best / top-N `checkpoint-*.pth.tar` bookkeeping, resumable
    history) with atomic writes of every file and a checkpoint layout loadable with `weights_only=True`.

    Args:
        run_args: Plain dict of the run's arguments, stored as `args` in every checkpoint.
        model_args: Keyword arguments that rebuild the model with `timm.create_model(arch, **model_args)`.
        **kwargs: `timm.utils.CheckpointSaver` arguments (model, optimizer, model_ema, amp_scaler, ...).
    """

    def __init__(self, *, run_args: Dict[str, Any], model_args: Dict[str, Any], **kwargs: Any):
        super().__init__(**kwargs)
        self.run_args = run_args
        self.model_args = model_args

    def _save(self, save_path: str, epoch: int, metric: Optional[float] = None) -> None:
        save_state = {
            'epoch': epoch,
            'arch': self.run_args.get('model', type(unwrap_model(self.model)).__name__.lower()),
            'model_args': self.model_args,
            'state_dict': get_state_dict(self.model, self.unwrap_fn),
            'optimizer': self.optimizer.state_dict(),
            'args': self.run_args,
            'version': 2,  # timm convention: `epoch` is the epoch just completed, resume starts at epoch + 1
        }
        if self.amp_scaler is not None:
            save_state[self.amp_scaler.state_dict_key] = self.amp_scaler.state_dict()
        if self.model_ema is not None:
            save_state['state_dict_ema'] = get_state_dict(self.model_ema, self.unwrap_fn)
        if metric is not None:
            save_state['metric'] = float(metric)
        save_state['saver'] = self.state_dict(epoch, metric)
        atomic_torch_save(save_state, save_path)

    def _duplicate(self, src: str, dst: str) -> None:
        # timm unlinks `dst` and then links / copies into place; a kill in between (or during a copy) would
        # leave no or a partial `model_best`. Link or copy to a temporary name first, then rename over `dst`.
        directory = os.path.dirname(os.path.abspath(dst))
        tmp = os.path.join(directory, '.' + os.path.basename(dst) + _TMP_TAG + str(os.getpid()))
        if os.path.exists(tmp):
            os.unlink(tmp)
        try:
            if self.can_hardlink:
                try:
                    os.link(src, tmp)
                except (OSError, NotImplementedError):
                    self.can_hardlink = False
            if not self.can_hardlink:
                shutil.copy2(src, tmp)
            os.replace(tmp, dst)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise


def file_sha256(path: str) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def _first_sentence(error: BaseException, limit: int = 160) -> str:
    # torch's loader errors run to several sentences of advice; the first one says what is wrong.
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    text = text.split('. ')[0].rstrip('.')
    return text if len(text) <= limit else text[:limit - 3] + '...'


def load_checkpoint_file(path: str) -> Dict[str, Any]:
    """Read a checkpoint (`.pth`, `.pth.tar`, `.bin` via torch, or `.safetensors`) with `weights_only=True`.

    Raises:
        CheckpointError: The file is missing, empty, truncated / corrupt, or holds objects weights_only refuses.
    """
    if not os.path.isfile(path):
        raise CheckpointError(f'checkpoint {path!r} does not exist')
    if os.path.getsize(path) == 0:
        raise CheckpointError(f'checkpoint {path!r} is empty (0 bytes); use an intact copy')
    if path.endswith('.safetensors'):
        try:
            import safetensors.torch
            return safetensors.torch.load_file(path, device='cpu')
        except Exception as e:
            raise CheckpointError(f'checkpoint {path!r} is not a readable safetensors file ({e})') from e
    try:
        # Namespace is allow-listed only for checkpoints written by timm's own train.py; ours hold plain dicts.
        with torch.serialization.safe_globals([argparse.Namespace]):
            checkpoint = torch.load(path, map_location='cpu', weights_only=True)
    except pickle.UnpicklingError as e:
        if 'weights_only' in str(e) or 'global' in str(e).lower():
            raise CheckpointError(
                f'checkpoint {path!r} holds Python objects that weights_only=True loading refuses '
                f'({_first_sentence(e)}); re-save its state_dict alone') from e
        raise CheckpointError(
            f'checkpoint {path!r} is truncated or not a PyTorch checkpoint ({_first_sentence(e)})') from e
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError) as e:
        raise CheckpointError(
            f'checkpoint {path!r} is truncated or not a PyTorch checkpoint ({_first_sentence(e)}); '
            f'use an intact copy') from e
    return checkpoint


def checkpoint_state_dict(checkpoint: Dict[str, Any], path: str, use_ema: bool = False) -> Dict[str, torch.Tensor]:
    """The model state_dict inside a loaded checkpoint (training checkpoint or bare state_dict).

    Args:
        checkpoint: Result of `load_checkpoint_file`.
        path: File name, for messages.
        use_ema: Use the EMA weights (`state_dict_ema`) if the checkpoint has them.
    """
    if not isinstance(checkpoint, dict):
        raise CheckpointError(f'checkpoint {path!r} holds a {type(checkpoint).__name__}, not a state_dict')
    if use_ema:
        for key in ('state_dict_ema', 'model_ema'):
            if isinstance(checkpoint.get(key), dict):
                return clean_state_dict(checkpoint[key])
        # timm's meaning of --use-ema: "use the EMA weights if present".
        _logger.warning(f'checkpoint {path!r} has no EMA weights; using its model weights.')
    for key in ('state_dict', 'model'):
        if isinstance(checkpoint.get(key), dict):
            return clean_state_dict(checkpoint[key])
    if checkpoint and all(isinstance(v, torch.Tensor) for v in checkpoint.values()):
        return clean_state_dict(checkpoint)
    raise CheckpointError(f'checkpoint {path!r} contains no model weights (keys: {", ".join(list(checkpoint)[:8])})')


def _classifier_names(model: nn.Module) -> List[str]:
    get_classifier = getattr(model, 'get_classifier', None)
    if get_classifier is None:
        return []
    try:
        classifier = get_classifier()
    except Exception:
        return []
    if not isinstance(classifier, nn.Module):
        return []
    ids = {id(p) for p in classifier.parameters()}
    return [n for n, p in model.named_parameters() if id(p) in ids]


def _preview(names: List[str], n: int = 3) -> str:
    shown = ', '.join(repr(x) for x in names[:n])
    return shown + (', ...' if len(names) > n else '')


def load_model_state(
        model: nn.Module,
        state_dict: Dict[str, torch.Tensor],
        path: str,
        model_name: str = '',
        saved_arch: Optional[str] = None,
) -> None:
    """Load a state_dict strictly, explaining any mismatch in one line before touching the model.

    Raises:
        CheckpointError: Number of classes differs (the fix is `--num-classes`), other shapes differ, or keys
            are missing / unexpected (a checkpoint of another architecture or other `--model-kwargs`).
    """
    model = unwrap_model(model)
    own = model.state_dict()
    name = model_name or type(model).__name__
    origin = f" (saved from '{saved_arch}')" if saved_arch and saved_arch != model_name else ''
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f'{len(missing)} missing keys ({_preview(missing)})')
        if unexpected:
            parts.append(f'{len(unexpected)} unexpected keys ({_preview(unexpected)})')
        fix = ('it was saved from this model name: pass the --model-kwargs it was trained with, or the model '
               'definition changed since it was saved' if saved_arch and saved_arch == model_name
               else 'pass the --model (and --model-kwargs) it was trained with')
        raise CheckpointError(f"checkpoint {path!r}{origin} does not fit model '{name}': {'; '.join(parts)}; {fix}")
    mismatched = [k for k in own if tuple(own[k].shape) != tuple(state_dict[k].shape)]
    if mismatched:
        head = set(_classifier_names(model))
        if head and set(mismatched) <= head:
            weight = next(k for k in mismatched if state_dict[k].ndim >= 1)
            ckpt_classes, model_classes = state_dict[weight].shape[0], own[weight].shape[0]
            raise CheckpointError(
                f'checkpoint {path!r} has {ckpt_classes} classes but model {name!r} has {model_classes}; '
                f'pass --num-classes {ckpt_classes}')
        k = mismatched[0]
        raise CheckpointError(
            f"checkpoint {path!r}{origin} does not fit model '{name}': {len(mismatched)} tensors differ in shape, "
            f"e.g. {k!r} is {list(state_dict[k].shape)} in the checkpoint, {list(own[k].shape)} in the model; "
            f"pass the --model / --model-kwargs it was trained with")
    model.load_state_dict(state_dict, strict=True)


def load_model_checkpoint(
        model: nn.Module,
        path: str,
        use_ema: bool = False,
        model_name: str = '',
) -> Dict[str, Any]:
    """Load a checkpoint's (EMA) weights into `model` with `weights_only=True` and strict checking.

    Returns:
        The loaded checkpoint (for its metadata: `args`, `epoch`, `arch`, ...).
    """
    checkpoint = load_checkpoint_file(path)
    state_dict = checkpoint_state_dict(checkpoint, path, use_ema=use_ema)
    saved_arch = checkpoint.get('arch') if isinstance(checkpoint, dict) and 'state_dict' in checkpoint else None
    load_model_state(model, state_dict, path, model_name=model_name, saved_arch=saved_arch)
    return checkpoint


def find_resume_checkpoint(output_dir: str) -> Optional[str]:
    """The checkpoint `--resume auto` continues from: `last.pth.tar`, else the newest `checkpoint-N.pth.tar`.

    Returns:
        A path, or None if the experiment directory holds no checkpoint (a fresh start).
    """
    last = os.path.join(output_dir, 'last.pth.tar')
    if os.path.isfile(last):
        return last

    def _epoch(p: str) -> int:
        try:
            return int(os.path.basename(p)[len('checkpoint-'):-len('.pth.tar')])
        except ValueError:
            return -1

    numbered = sorted(glob.glob(os.path.join(output_dir, 'checkpoint-*.pth.tar')), key=_epoch)
    return numbered[-1] if numbered else None

