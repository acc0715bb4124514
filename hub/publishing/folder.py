"""Turn a training checkpoint into the content of a Hugging Face Hub repo, in the form timm loads.

`prepare_publication` reads and checks everything (checkpoint, model name, results file, run arguments) and
raises `PublishError` with a one-line message before anything is written; `write_publication` then writes the
folder in one step: the files are built in a temporary sibling folder and swapped in by renames, so the folder
holds either the complete previous publication or the complete new one, never a mix or a half-written file.

The folder holds:

* `model.safetensors`: the weights only (EMA or model weights), contiguous, with metadata (`format`,
  `architecture`, `model_args`, which weights, the source checkpoint's sha256);
* `config.json`: timm's Hub format, written by `timm.models.save_for_hf` (architecture, `model_args` of the
  keyword variant, `pretrained_cfg` with the preprocessing the weights were validated with);
* `README.md`: the model card (`hub.publishing.card`), its numbers taken from the validation results file;
* `train_hparams.yaml`: the run's `args.yaml`, its paths made portable (relative to the repository, or null).

`prepare_republication` rebuilds the publication of an existing folder from the folder itself (its weights, their
metadata, its `train_hparams.yaml`, the tag's results file): after a change of the card or of timm-nf's version,
every folder is written again with the same weights, without the training checkpoint.
"""
import csv
import fnmatch
import json
import logging
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import safetensors.torch
import torch
import yaml

import timm
from timm.models import get_pretrained_cfg, save_for_hf, split_model_name_tag

import timm_nf
from timm_nf.models import ResidualNet
from timm_nf.pretrained import PretrainedWeights, find_published
from timm_nf.training.checkpoint import (
    checkpoint_state_dict, file_sha256, fsync_dir, load_checkpoint_file, load_model_state,
)
from timm_nf.training.config import portable_run_args
from timm_nf.training.errors import CheckpointError, RunError

from .results import REPO_ROOT

__all__ = [
    'PublishError', 'Publication', 'prepare_publication', 'prepare_republication', 'write_publication',
    'architecture_differences', 'read_results_rows', 'HUB_FILES', 'WEIGHTS_FILE', 'CONFIG_FILE', 'CARD_FILE',
    'HPARAMS_FILE',
]

_logger = logging.getLogger(__name__)

WEIGHTS_FILE = 'model.safetensors'
CONFIG_FILE = 'config.json'
CARD_FILE = 'README.md'
HPARAMS_FILE = 'train_hparams.yaml'
HUB_FILES = (WEIGHTS_FILE, CONFIG_FILE, CARD_FILE, HPARAMS_FILE)

# Factory arguments that change training behaviour, not the architecture or the weights' meaning.
RUNTIME_ARGS = ('drop_rate', 'drop_path_rate', 'drop_block_rate')
# Arguments a pretrained tag fixes through its pretrained cfg rather than through the architecture.
CFG_ARGS = ('num_classes', 'in_chans', 'global_pool')
TIMM_NF_MODULES = ('crelu_resnet', 'normprop_resnet', 'nf_resnet', 'nf_regnet')
_REPO_ID = re.compile(r'^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$')
_TMP_PREFIX = '.publish-tmp-'
_OLD_PREFIX = '.publish-old-'


class PublishError(RunError):
    """Bad input to publishing (checkpoint, model name, results, output folder) or a failed upload."""


@dataclass
class Publication:
    """Everything that goes into the Hub repo folder, checked and held in memory.

    Attributes:
        model_name: Registered architecture.
        tag: Pretrained tag the weights are published under ('' for an `hf-hub:` repo only).
        repo_id: Hub repo (`owner/name`).
        revision: Hub branch the files go to ('' for main).
        model: The model with the published weights loaded (CPU, eval mode).
        model_args: `timm.create_model` keyword arguments that rebuild it (from the checkpoint).
        use_ema: The weights are the checkpoint's EMA weights.
        checkpoint: Source checkpoint path (never written into the folder; '' when republished from a folder).
        checkpoint_sha256: The training checkpoint's sha256.
        epoch: Epoch the checkpoint was saved after, if recorded.
        results: The validation results row of these weights, if given.
        results_file: Where that row came from.
        data_config: Preprocessing (`img_size`, `crop_pct`, `interpolation`, `mean`, `std`) for `config.json`.
        label_names: Class names, if known.
        hparams_text: The run's `args.yaml`, verbatim ('' if unknown).
        hparams_source: Where it came from.
        registry_entry: The `timm_nf.pretrained` entry of `model_name.tag`, if registered (or given).
        root: Checkout the files the entry names are read from (its study aggregate); None: this repository.
    """
    model_name: str
    tag: str
    repo_id: str
    revision: str
    model: torch.nn.Module
    model_args: Dict[str, Any]
    use_ema: bool
    checkpoint: str
    checkpoint_sha256: str
    epoch: Optional[int] = None
    results: Optional[Dict[str, Any]] = None
    results_file: str = ''
    data_config: Dict[str, Any] = field(default_factory=dict)
    label_names: Optional[List[str]] = None
    hparams_text: str = ''
    hparams_source: str = ''
    registry_entry: Optional[PretrainedWeights] = None
    root: Optional[Path] = None

    @property
    def name(self) -> str:
        """`model.tag` for a tag, else the repo's name."""
        return f'{self.model_name}.{self.tag}' if self.tag else self.repo_id.split('/')[-1]

    @property
    def hub_ref(self) -> str:
        """`owner/name[@revision]` as timm's `hf-hub:` prefix takes it."""
        return self.repo_id + (f'@{self.revision}' if self.revision and self.revision != 'main' else '')

    def safetensors_metadata(self) -> Dict[str, str]:
        """Metadata of `model.safetensors` (string values only, as safetensors requires)."""
        meta = {
            'format': 'pt',
            'architecture': self.model_name,
            'model_args': json.dumps(self.model_args, sort_keys=True),
            'weights': 'ema' if self.use_ema else 'model',
            'checkpoint_sha256': self.checkpoint_sha256,
            'timm_version': timm.__version__,
            'timm_nf_version': timm_nf.__version__,
        }
        if self.tag:
            meta['pretrained_tag'] = self.tag
        if self.epoch is not None:
            meta['epoch'] = str(self.epoch)
        return meta


# Inputs -------------------------------------------------------------------------------------------------------

def _check_model_name(model: str, tag: str) -> Tuple[str, str]:
    """(architecture, tag) of `--model` [`--tag`], both checked."""
    if model.startswith(('hf-hub:', 'hf_hub:', 'local-dir:')):
        raise PublishError(f'--model {model!r} must be a registered architecture name, not a Hub or folder source')
    arch, name_tag = split_model_name_tag(model)
    if name_tag and tag and name_tag != tag:
        raise PublishError(f'--model {model!r} names tag {name_tag!r} but --tag is {tag!r}; give the tag once')
    tag = tag or name_tag
    if not timm.is_model(arch):
        close = fnmatch.filter(timm.list_models(), f'*{arch[:6]}*')[:5]
        hint = f" (similar: {', '.join(close)})" if close else ''
        raise PublishError(f'unknown model {arch!r}{hint}; pass a name `timm.list_models()` knows '
                           f'(`import timm_nf` registers the timm-nf families)')
    if tag and not re.fullmatch(r'[a-z0-9][a-z0-9_]*', tag):
        raise PublishError(f'tag {tag!r} must be lower case letters, digits and underscores (e.g. digits, in1k)')
    return arch, tag


def _check_repo_id(repo_id: str) -> None:
    if not _REPO_ID.match(repo_id or '') or '--' in repo_id or '..' in repo_id:
        raise PublishError(f'--repo-id {repo_id!r} is not a Hub repo id; use OWNER/NAME (letters, digits, . _ -)')


def _is_timm_nf_model(arch: str) -> bool:
    return any(arch in timm.list_models(module=m) for m in TIMM_NF_MODULES)


def _plain_model_args(model_args: Any, path: str) -> Dict[str, Any]:
    if model_args is None:
        return {}
    if not isinstance(model_args, dict):
        raise PublishError(f'checkpoint {path!r} records model_args as {type(model_args).__name__}, not a mapping')
    try:
        json.dumps(model_args)
    except (TypeError, ValueError) as e:
        raise PublishError(f'model_args of checkpoint {path!r} are not JSON serializable ({e})') from e
    return dict(model_args)


def read_results_rows(path: str) -> List[Dict[str, Any]]:
    """Rows of a `train/validate.py` results file (JSON object or list, or CSV), values typed as in JSON.

    Raises:
        PublishError: Missing, unreadable, or not a results file.
    """
    if not os.path.isfile(path):
        raise PublishError(f'results file {path!r} does not exist')
    text = Path(path).read_text(encoding='utf-8')
    rows: Any
    if path.endswith('.csv'):
        rows = list(csv.DictReader(text.splitlines()))
        for row in rows:
            for key, value in list(row.items()):
                if key == 'model_args' and value:
                    row[key] = json.loads(value)
                elif key in ('top1', 'top1_err', 'top5', 'top5_err', 'param_count', 'crop_pct') and value != '':
                    row[key] = float(value)
                elif key in ('img_size', 'num_images') and value != '':
                    row[key] = int(value)
    else:
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as e:
            raise PublishError(f'results file {path!r} is not valid JSON ({e.msg} at line {e.lineno})') from e
        rows = rows if isinstance(rows, list) else [rows]
    if not rows or not all(isinstance(r, dict) and 'model' in r and 'top1' in r for r in rows):
        raise PublishError(f'results file {path!r} is not a results file of train/validate.py (rows with model, top1)')
    return rows


def _select_results(
        rows: List[Dict[str, Any]], path: str, arch: str, model_args: Dict[str, Any], ckpt_sha: str,
) -> List[Dict[str, Any]]:
    """Rows of `rows` that measured exactly this checkpoint of this model; a clear error otherwise."""
    for_model = [r for r in rows if split_model_name_tag(str(r.get('model', '')))[0] == arch]
    if not for_model:
        models = sorted({str(r.get('model')) for r in rows})
        raise PublishError(f'results file {path!r} is for model {", ".join(models)}, not {arch!r}; '
                           f'validate this checkpoint with train/validate.py --results-file')
    for_ckpt = [r for r in for_model if r.get('checkpoint_sha256') == ckpt_sha]
    if not for_ckpt:
        measured = sorted({str(r.get('checkpoint_sha256') or 'no checkpoint')[:12] for r in for_model})
        raise PublishError(f'results file {path!r} measured checkpoint {", ".join(measured)}, not this one '
                           f'({ckpt_sha[:12]}); validate this checkpoint with train/validate.py --results-file')
    for row in for_ckpt:
        if 'model_args' in row and dict(row['model_args'] or {}) != model_args:
            raise PublishError(f"results file {path!r} measured model_args {row['model_args']!r}, the checkpoint "
                               f'was trained with {model_args!r}; validate it without overriding --model-kwargs')
    return for_ckpt


def _choose_weights(
        rows: List[Dict[str, Any]], has_ema: bool, use_ema: Optional[bool], path: str, results_file: str,
) -> Tuple[bool, Optional[Dict[str, Any]]]:
    """(use EMA weights, results row of those weights).

    `use_ema` True / False is the caller's choice; None picks the better validated set: the checkpoint's only
    weights when it has no EMA, else the row with the higher top-1 among rows that say which set they measured
    (`use_ema` field).
    """
    if use_ema and not has_ema:
        raise PublishError(f'checkpoint {path!r} has no EMA weights (state_dict_ema); publish without --ema')

    def measured_ema(row: Dict[str, Any]) -> Optional[bool]:
        value = row.get('use_ema')
        if value in (None, ''):
            return None if has_ema else False
        return str(value).lower() in ('1', 'true', 'yes') if not isinstance(value, bool) else value

    if not rows:
        if use_ema is None and has_ema:
            raise PublishError(f'checkpoint {path!r} has EMA and model weights; pass --ema or --no-ema '
                               f'(or --results with rows for both) to say which to publish')
        return bool(use_ema), None
    labelled = [(measured_ema(r), r) for r in rows]
    if use_ema is None:
        if not has_ema:
            use_ema = False
        else:
            known = [(e, r) for e, r in labelled if e is not None]
            if not known:
                raise PublishError(f'checkpoint {path!r} has EMA and model weights and results file '
                                   f'{results_file!r} does not say which it measured (no use_ema field); '
                                   f'pass --ema or --no-ema')
            use_ema = max(known, key=lambda er: float(er[1]['top1']))[0]
    matching = [r for e, r in labelled if e == use_ema or (e is None and len(labelled) == 1)]
    if not matching:
        which = 'EMA' if use_ema else 'model'
        raise PublishError(f'results file {results_file!r} has no row for the {which} weights of {path!r}; '
                           f'validate them (train/validate.py{" --use-ema" if use_ema else ""})')
    return use_ema, max(matching, key=lambda r: float(r['top1']))


def _read_hparams(default_path: str, hparams: Optional[str], arch: str, ckpt_args: Dict[str, Any]) -> Tuple[
        str, str]:
    """(args.yaml text, its path): `hparams`, else `default_path` (the run's args.yaml) if it exists, else ('', '').

    Paths in it are made portable (`timm_nf.training.config.portable_run_args`, relative to this repository), so
    that the published file names no place on the training machine; a file that names none is kept verbatim.
    """
    path = hparams or default_path
    if not os.path.isfile(path):
        if hparams:
            raise PublishError(f'--hparams file {hparams!r} does not exist')
        return '', ''
    text = Path(path).read_text(encoding='utf-8')
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise PublishError(f'{path!r} is not valid YAML: {str(e).splitlines()[0]}') from e
    if not isinstance(data, dict):
        raise PublishError(f'{path!r} is not an args.yaml of train/train.py (a mapping of arguments)')
    run_model = data.get('model')
    if run_model and split_model_name_tag(str(run_model))[0] != arch:
        raise PublishError(f'{path!r} is the args.yaml of a {run_model!r} run, not of {arch!r}; pass --hparams '
                           f'with the args.yaml of the run that wrote the checkpoint')
    if ckpt_args and data.get('model_kwargs', {}) != ckpt_args.get('model_kwargs', data.get('model_kwargs', {})):
        raise PublishError(f'{path!r} has other model_kwargs than the checkpoint; pass --hparams with the args.yaml '
                           f'of the run that wrote the checkpoint')
    portable = portable_run_args(data, str(REPO_ROOT))
    if portable != data:
        text = yaml.safe_dump(portable, default_flow_style=False)  # train.py's own format
    return text, path


def _label_names(dataset: str, num_classes: int, entry: Optional[PretrainedWeights]) -> Optional[List[str]]:
    if entry is not None and entry.label_names:
        return list(entry.label_names)
    if dataset == 'digits' and num_classes == 10:
        return [str(i) for i in range(10)]
    if num_classes == 1000 and dataset in ('imagenet', 'imagenet-1k', ''):
        from timm.data import ImageNetInfo
        return list(ImageNetInfo().label_names())
    return None


def _base_pretrained_cfg(arch: str) -> Dict[str, Any]:
    """The architecture's pretrained cfg without weight source or dataset-specific labels."""
    cfg = get_pretrained_cfg(arch)
    data = {f.name: getattr(cfg, f.name) for f in fields(cfg)} if cfg is not None else {}
    for key in ('url', 'file', 'state_dict', 'hf_hub_id', 'hf_hub_filename', 'source', 'tag', 'label_names',
                'label_descriptions', 'label_offset'):
        data.pop(key, None)
    return data


def architecture_differences(arch: str, model_args: Dict[str, Any]) -> List[str]:
    """How `timm.create_model(arch, **model_args)` differs from `arch` with its defaults, architecture-wise.

    Runtime arguments (drop rates) and the cfg-level ones a tag fixes (`num_classes`, `in_chans`, `global_pool`)
    are not compared here. Returns `field: default -> value` strings (empty: the name rebuilds the model).
    """
    build_args = {k: v for k, v in model_args.items() if k not in RUNTIME_ARGS + CFG_ARGS}
    if not build_args:
        return []
    default = timm.create_model(arch, device='meta')
    variant = timm.create_model(arch, device='meta', **build_args)
    if isinstance(default, ResidualNet) and isinstance(variant, ResidualNet):
        return [f'{f.name}: {getattr(default.cfg, f.name)!r} -> {getattr(variant.cfg, f.name)!r}'
                for f in fields(default.cfg) if getattr(default.cfg, f.name) != getattr(variant.cfg, f.name)]
    if repr(default) != repr(variant):
        return [f'{k}={v!r}' for k, v in build_args.items()]
    return []


def _check_target(arch: str, tag: str, repo_id: Optional[str], results: Optional[str], revision: str,
                  entry: Optional[PretrainedWeights] = None) -> Tuple[Optional[PretrainedWeights], str]:
    """(registry entry of `arch.tag` or None, Hub repo id), both checked; `entry` stands for the registry's."""
    if entry is None:
        entry = find_published(arch, tag) if tag else None
    elif (entry.model, entry.tag) != (arch, tag):
        raise PublishError(f'the registry entry given is {entry.name}, not {arch}.{tag}; give the entry of that tag')
    if tag:
        if not _is_timm_nf_model(arch):
            raise PublishError(f'{arch!r} is an architecture timm owns: publish its weights as an hf-hub: repo '
                               f'(without --tag), timm\'s registry is not changed by timm-nf')
        if results is None:
            raise PublishError(f'publishing the tag {arch}.{tag} needs --results (the validation results file its '
                               f'metrics come from)')
        if repo_id is None:
            repo_id = entry.hub_id if entry else f'timm-nf/{arch}.{tag}'
        if entry is not None and repo_id != entry.hub_id:
            raise PublishError(f'{arch}.{tag} is registered with hub id {entry.hub_id!r} in timm_nf/pretrained.py, '
                               f'not {repo_id!r}; publish to {entry.hub_id} or choose another tag')
    if repo_id is None:
        raise PublishError('--repo-id OWNER/NAME is required (it may be left out only with --tag)')
    _check_repo_id(repo_id)
    if revision and not re.fullmatch(r'[A-Za-z0-9][A-Za-z0-9._/-]*', revision):
        raise PublishError(f'--revision {revision!r} is not a branch name')
    return entry, repo_id


def prepare_publication(
        checkpoint: str,
        model: str,
        repo_id: Optional[str] = None,
        tag: str = '',
        use_ema: Optional[bool] = None,
        results: Optional[str] = None,
        hparams: Optional[str] = None,
        revision: str = '',
        entry: Optional[PretrainedWeights] = None,
        root: Optional[Path] = None,
) -> Publication:
    """Read and check everything a publication needs; nothing is written.

    Args:
        checkpoint: Training checkpoint of `train/train.py` (or timm's), a bare state_dict, or `.safetensors`.
        model: Registered architecture name (`name.tag` is the same as `name` with `tag`).
        repo_id: Hub repo `OWNER/NAME`; with a tag it defaults to the registry's `timm-nf/<model>.<tag>`.
        tag: Publish as the pretrained tag `model.tag` (the name's defaults must rebuild the trained model).
        use_ema: True: EMA weights; False: model weights; None: the better validated set (see `_choose_weights`).
        results: Validation results file (JSON / CSV of `train/validate.py`) of this checkpoint.
        hparams: The run's `args.yaml` (default: `args.yaml` next to the checkpoint).
        revision: Hub branch to publish to (default: main).
        entry: The tag's entry, in place of `timm_nf.pretrained`'s: a tag not registered yet (a study row whose
            grid has not finished) published into a scratch folder, with the card its registration will give.
        root: Checkout the entry's files are read from (its study aggregate; default: this repository).

    Raises:
        PublishError: Any bad input, with a one-line message naming the problem and the fix.
    """
    arch, tag = _check_model_name(model, tag)
    entry, repo_id = _check_target(arch, tag, repo_id, results, revision, entry)

    try:
        ckpt = load_checkpoint_file(checkpoint)
    except CheckpointError as e:
        raise PublishError(str(e)) from e
    if not isinstance(ckpt, dict):
        raise PublishError(f'checkpoint {checkpoint!r} holds a {type(ckpt).__name__}, not a checkpoint or state_dict')
    saved_arch = ckpt.get('arch') if isinstance(ckpt.get('arch'), str) else None
    run_args = ckpt.get('args') if isinstance(ckpt.get('args'), dict) else {}
    if saved_arch is None and isinstance(run_args.get('model'), str):
        saved_arch = run_args['model']
    if saved_arch and split_model_name_tag(saved_arch)[0] != arch:
        raise PublishError(f'checkpoint {checkpoint!r} was trained as {saved_arch!r}, not {arch!r}; '
                           f'pass --model {saved_arch}')
    ckpt_sha = file_sha256(checkpoint)
    has_ema = isinstance(ckpt.get('state_dict_ema'), dict) or isinstance(ckpt.get('model_ema'), dict)
    model_args = _plain_model_args(ckpt.get('model_args'), checkpoint)

    rows: List[Dict[str, Any]] = []
    if results is not None:
        all_rows = read_results_rows(results)
        if not model_args and 'model_args' not in ckpt:
            # A bare state_dict records nothing: take the model arguments the results file validated it with.
            candidates = [r for r in all_rows if r.get('checkpoint_sha256') == ckpt_sha and r.get('model_args')]
            if candidates:
                model_args = dict(candidates[0]['model_args'])
        rows = _select_results(all_rows, results, arch, model_args, ckpt_sha)
    use_ema, row = _choose_weights(rows, has_ema, use_ema, checkpoint, results or '')

    def state_dict() -> Dict[str, torch.Tensor]:
        try:
            return checkpoint_state_dict(ckpt, checkpoint, use_ema=use_ema)
        except CheckpointError as e:
            raise PublishError(str(e)) from e

    epoch = ckpt.get('epoch') if isinstance(ckpt.get('epoch'), int) else None
    default_hparams = os.path.join(os.path.dirname(os.path.abspath(checkpoint)), 'args.yaml')
    pub = _assemble(
        arch, tag, repo_id, revision, entry, model_args, use_ema, row, run_args, state_dict, checkpoint,
        saved_arch, ckpt_sha, epoch, results or '', hparams, default_hparams)
    pub.root = root
    return pub


def prepare_republication(
        folder: str,
        repo_id: Optional[str] = None,
        results: Optional[str] = None,
        revision: str = '',
) -> Publication:
    """The publication of an existing folder, rebuilt from the folder itself; nothing is written.

    The weights, which of the checkpoint's sets they are, its sha256 and epoch, the architecture, model arguments
    and tag come from `model.safetensors` and its metadata; the run's arguments from `train_hparams.yaml`; the
    metrics from the tag's registered results file (or `results`). `write_publication` then writes the folder
    with the current card, config and metadata, and the same tensors.

    Args:
        folder: A publication folder `write_publication` wrote.
        repo_id: Hub repo `OWNER/NAME` (default with a tag: the registry's; required without one).
        results: Validation results file (default with a registered tag: its `results` file in this repository).
        revision: Hub branch the card names (default: main).

    Raises:
        PublishError: Not a complete publication, metadata missing, or inputs that do not match the weights.
    """
    from .upload import check_publication_folder
    check_publication_folder(folder)
    weights = os.path.join(folder, WEIGHTS_FILE)
    try:
        with safetensors.safe_open(weights, 'pt') as f:
            meta = dict(f.metadata() or {})
        tensors = safetensors.torch.load_file(weights)
    except (OSError, safetensors.SafetensorError) as e:
        raise PublishError(f'{weights!r} is not a readable safetensors file ({e})') from e
    missing = [k for k in ('architecture', 'model_args', 'weights', 'checkpoint_sha256') if k not in meta]
    if missing:
        raise PublishError(f'{weights!r} lacks the metadata {", ".join(missing)} that publish writes; publish it again '
                           f'from its checkpoint (--checkpoint)')
    arch, tag = _check_model_name(meta['architecture'], meta.get('pretrained_tag', ''))
    entry = find_published(arch, tag) if tag else None
    if results is None and entry is not None:
        results = str(REPO_ROOT / entry.results)
    entry, repo_id = _check_target(arch, tag, repo_id, results, revision)
    model_args = _plain_model_args(json.loads(meta['model_args']), weights)
    use_ema = meta['weights'] == 'ema'
    ckpt_sha = meta['checkpoint_sha256']
    rows: List[Dict[str, Any]] = []
    if results is not None:
        rows = _select_results(read_results_rows(results), results, arch, model_args, ckpt_sha)
    use_ema, row = _choose_weights(rows, use_ema, use_ema, weights, results or '')
    hparams = os.path.join(folder, HPARAMS_FILE)
    run_args: Dict[str, Any] = {}
    if os.path.isfile(hparams):
        loaded = yaml.safe_load(Path(hparams).read_text(encoding='utf-8'))
        run_args = loaded if isinstance(loaded, dict) else {}
    epoch = int(meta['epoch']) if meta.get('epoch', '').isdigit() else None
    return _assemble(
        arch, tag, repo_id, revision, entry, model_args, use_ema, row, run_args, lambda: tensors, '',
        arch, ckpt_sha, epoch, results or '', hparams if os.path.isfile(hparams) else None, '')


def _assemble(
        arch: str, tag: str, repo_id: str, revision: str, entry: Optional[PretrainedWeights],
        model_args: Dict[str, Any], use_ema: bool, row: Optional[Dict[str, Any]], run_args: Dict[str, Any],
        state_dict: Callable[[], Dict[str, torch.Tensor]], checkpoint: str, saved_arch: Optional[str],
        ckpt_sha: str, epoch: Optional[int], results_file: str, hparams: Optional[str], default_hparams: str,
) -> Publication:
    """The checks and the model shared by `prepare_publication` and `prepare_republication`."""
    if tag:
        diffs = architecture_differences(arch, model_args)
        if diffs:
            raise PublishError(f'the checkpoint is a keyword variant of {arch!r} ({"; ".join(diffs)}): the tag '
                               f'{arch}.{tag} would rebuild the defaults; publish it as an hf-hub: repo (without '
                               f'--tag), whose config.json carries model_args, or train a registered name')

    # Preprocessing: the results file's (what was measured), then the run's arguments, then the model's defaults.
    data_config: Dict[str, Any] = {}
    for key in ('img_size', 'crop_pct', 'interpolation', 'mean', 'std'):
        value = (row or {}).get(key)
        if value in (None, ''):
            value = run_args.get(key)
        if value not in (None, ''):
            data_config[key] = tuple(value) if isinstance(value, list) else value
    if 'input_size' in run_args and run_args['input_size'] and 'img_size' not in data_config:
        data_config['input_size'] = tuple(run_args['input_size'])

    base_cfg = _base_pretrained_cfg(arch)
    build_args = {k: v for k, v in model_args.items() if k not in RUNTIME_ARGS}
    try:
        net = timm.create_model(arch, pretrained=False, pretrained_cfg=base_cfg, **build_args)
    except (TypeError, ValueError, AssertionError) as e:
        raise PublishError(f'cannot build {arch!r} with the checkpoint\'s model_args {model_args!r}: {e}') from e
    source = checkpoint or f'{arch} weights'
    try:
        load_model_state(net, state_dict(), source, model_name=arch, saved_arch=saved_arch)
    except CheckpointError as e:
        raise PublishError(str(e)) from e
    net.eval()

    dataset = str((row or {}).get('dataset') or run_args.get('dataset') or '')
    if entry is not None:
        _check_against_entry(entry, net, data_config, row, dataset)
    hparams_text, hparams_source = _read_hparams(default_hparams, hparams, arch, run_args)
    return Publication(
        model_name=arch, tag=tag, repo_id=repo_id, revision=revision, model=net, model_args=model_args,
        use_ema=use_ema, checkpoint=checkpoint, checkpoint_sha256=ckpt_sha, epoch=epoch, results=row,
        results_file=results_file, data_config=data_config,
        label_names=_label_names(dataset, net.num_classes, entry), hparams_text=hparams_text,
        hparams_source=hparams_source, registry_entry=entry,
    )


def _check_against_entry(
        entry: PretrainedWeights, net: torch.nn.Module, data_config: Dict[str, Any], row: Optional[Dict[str, Any]],
        dataset: str,
) -> None:
    """A registered tag loads with the registry's cfg: the weights' classes and preprocessing must agree."""
    problems = []
    if net.num_classes != entry.num_classes:
        problems.append(f'num_classes {net.num_classes} vs {entry.num_classes}')
    if dataset and dataset != entry.dataset:
        problems.append(f'dataset {dataset!r} vs {entry.dataset!r}')
    if row and row.get('split') != entry.metrics_split:  # the card states the split of the entry's study numbers
        problems.append(f"results split {row.get('split')!r} vs {entry.metrics_split!r}")
    for key, want in (('img_size', entry.input_size[-1]), ('crop_pct', entry.crop_pct),
                      ('interpolation', entry.interpolation), ('mean', tuple(entry.mean)),
                      ('std', tuple(entry.std))):
        if key in data_config and data_config[key] != want:
            problems.append(f'{key} {data_config[key]!r} vs {want!r}')
    if problems:
        raise PublishError(f'the checkpoint does not fit the registered tag {entry.name} ({"; ".join(problems)}, '
                           f'checkpoint vs timm_nf/pretrained.py); use another tag or fix the registry entry')


# Output -------------------------------------------------------------------------------------------------------

def _write_file(path: Path, data: bytes) -> None:
    with open(path, 'wb') as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _canonical_safetensors(tensors: Dict[str, torch.Tensor], metadata: Dict[str, str]) -> bytes:
    """safetensors bytes with the metadata keys sorted, so the same weights always give the same file.

    safetensors keeps `__metadata__` in a hash map whose order changes from process to process; the header is
    rewritten (same tensors, offsets and data, 8-byte aligned as the format requires).
    """
    raw = safetensors.torch.save(tensors, metadata=metadata)
    n = int.from_bytes(raw[:8], 'little')
    header = json.loads(raw[8:8 + n])
    header['__metadata__'] = dict(sorted(header['__metadata__'].items()))
    ordered = {'__metadata__': header.pop('__metadata__'), **dict(sorted(header.items()))}
    text = json.dumps(ordered, separators=(',', ':')).encode('utf-8')
    text += b' ' * (-len(text) % 8)
    return len(text).to_bytes(8, 'little') + text + raw[8 + n:]


def _write_folder(pub: Publication, folder: Path) -> None:
    """Write the publication's files into the empty folder `folder`."""
    from .card import render_card

    data_config = dict(pub.data_config)
    model_config: Dict[str, Any] = {}
    if pub.label_names:
        model_config['label_names'] = list(pub.label_names)
    # timm writes config.json (and an unannotated model.safetensors, replaced below).
    export_args = {k: v for k, v in pub.model_args.items() if k not in RUNTIME_ARGS}
    save_for_hf(pub.model, str(folder), model_config=model_config, model_args=export_args,
                safe_serialization=True, data_config=data_config)
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in pub.model.state_dict().items()}
    _write_file(folder / WEIGHTS_FILE, _canonical_safetensors(tensors, pub.safetensors_metadata()))
    config = json.loads((folder / CONFIG_FILE).read_text())
    _write_file(folder / CONFIG_FILE, (json.dumps(config, indent=2) + '\n').encode('utf-8'))
    _write_file(folder / CARD_FILE, render_card(pub, config).encode('utf-8'))
    if pub.hparams_text:
        _write_file(folder / HPARAMS_FILE, pub.hparams_text.encode('utf-8'))
    for name in os.listdir(folder):
        os.chmod(folder / name, 0o644)


def _check_out_dir(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise PublishError(f'--out {str(out)!r} is a file; give a directory')
    if out.is_dir():
        foreign = sorted(n for n in os.listdir(out) if n not in HUB_FILES)
        if foreign:
            raise PublishError(f'--out {str(out)!r} holds files publish does not write ({", ".join(foreign[:4])}); '
                               f'choose a new or empty directory')
    if out.parent.exists() and not out.parent.is_dir():
        raise PublishError(f'parent of --out {str(out)!r} is a file; give a directory path')


def write_publication(pub: Publication, out_dir: str) -> List[str]:
    """Write the Hub repo folder `out_dir` in one step (temporary sibling folder, then renames).

    Returns:
        The file names written.

    Raises:
        PublishError: `out_dir` is a file or holds files that are not a publication's.
    """
    out = Path(out_dir).resolve()
    _check_out_dir(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_staging(out)
    staging = Path(tempfile.mkdtemp(prefix=_TMP_PREFIX + out.name + '-', dir=out.parent))
    try:
        _write_folder(pub, staging)
        os.chmod(staging, 0o755)
        fsync_dir(staging)
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=_OLD_PREFIX + out.name + '-', dir=out.parent))
            os.replace(out, old / out.name)
            try:
                os.replace(staging, out)
            except BaseException:
                os.replace(old / out.name, out)  # put the previous publication back
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, out)
        fsync_dir(out.parent)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return sorted(os.listdir(out))


def remove_stale_staging(out: Path) -> None:
    """Delete temporary folders an interrupted `write_publication` of `out` left next to it."""
    for prefix in (_TMP_PREFIX, _OLD_PREFIX):
        for path in out.parent.glob(f'{prefix}{out.name}-*'):
            if prefix == _OLD_PREFIX and not out.exists() and (path / out.name).is_dir():
                os.replace(path / out.name, out)  # killed between the two renames: restore the previous folder
            shutil.rmtree(path, ignore_errors=True)
