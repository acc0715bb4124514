"""Command line + YAML config handling shared by `train/train.py` and `train/validate.py`.

As in timm's scripts, `--config FILE.yaml` supplies defaults and the command line overrides them. Keys may be
written as flag names (`batch-size`) or argparse destinations (`batch_size`). Unlike timm, a key the parser
does not know is not silently dropped: it is listed in a warning (timm's own args.yaml files carry flags this
script does not have, so it cannot be an error) and its value ignored.

Records (`args.yaml`, checkpoints' `args`, results files) name files portably (`portable_path`): relative to the
repository root when they lie inside it, not at all when they are elsewhere on the machine that wrote them.
"""
import argparse
import logging
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

import yaml

from .errors import RunError

__all__ = ['parse_args_with_config', 'args_to_dict', 'load_yaml_config', 'portable_path', 'portable_run_args',
           'PATH_ARGS']

_logger = logging.getLogger(__name__)


def load_yaml_config(path: str) -> Dict[str, Any]:
    """Read a YAML mapping of argument values, with one-line errors for missing / malformed files."""
    if not os.path.isfile(path):
        raise RunError(f'config file {path!r} does not exist')
    try:
        with open(path) as f:
            cfg = yaml.safe_load(f)
    except yaml.YAMLError as e:
        raise RunError(f'config file {path!r} is not valid YAML: {str(e).splitlines()[0]}') from e
    if cfg is None:
        return {}
    if not isinstance(cfg, dict):
        raise RunError(f'config file {path!r} must hold a mapping of flag names to values, not {type(cfg).__name__}')
    return cfg


def parse_args_with_config(
        parser: argparse.ArgumentParser,
        argv: Optional[Sequence[str]] = None,
        ignore_keys: Sequence[str] = ('config',),
) -> Tuple[argparse.Namespace, Dict[str, Any]]:
    """Parse `argv` with defaults taken from the YAML file named by `-c/--config` (if any).

    Args:
        parser: The script's parser; it must define `-c/--config`.
        argv: Arguments (default: `sys.argv[1:]`).
        ignore_keys: Config keys accepted without a warning but not applied.

    Returns:
        The parsed namespace and a dict of the values as parsed (before any resolution by the run), fit to be
        written to `args.yaml` and read back with `--config`.
    """
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument('-c', '--config', default='')
    known, _ = pre.parse_known_args(argv)
    if known.config:
        cfg = load_yaml_config(known.config)
        dests = {a.dest for a in parser._actions}
        defaults, unknown = {}, []
        for key, value in cfg.items():
            dest = str(key).lstrip('-').replace('-', '_')
            if dest in ignore_keys:
                continue
            if dest in dests:
                defaults[dest] = value
            else:
                unknown.append(str(key))
        if unknown:
            _logger.warning(f'config {known.config}: ignoring keys this script does not use: {", ".join(unknown)}')
        parser.set_defaults(**defaults)
    args = parser.parse_args(argv)
    return args, args_to_dict(args)


def _plain(value: Any) -> Any:
    """YAML / weights_only-safe copy of a value: containers and primitives kept, anything else as str."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return str(value)


def args_to_dict(args: argparse.Namespace, keys: Optional[List[str]] = None) -> Dict[str, Any]:
    """Plain dict of argument values (primitives only), for args.yaml and for checkpoints loaded weights_only."""
    items = vars(args).items() if keys is None else ((k, getattr(args, k)) for k in keys)
    return {k: _plain(v) for k, v in items}


# Arguments of train/train.py that name files or folders (timm's names).
PATH_ARGS = ('config', 'data', 'data_dir', 'output', 'resume', 'initial_checkpoint', 'class_map')
LOCAL_DIR = 'local-dir:'


def portable_path(path: Optional[str], root: str) -> Optional[str]:
    """`path` as a record may carry it: relative to `root` (with `/`) when it lies inside `root`, else None.

    A relative `path` is taken from the current directory, as the scripts read it. A location elsewhere (`/tmp`,
    a home directory, a data disk) names a place on one machine only, so it is left out rather than written.
    Empty values and `auto` (`--resume auto`) are kept as they are.
    """
    if path in (None, '', 'auto'):
        return path
    full = os.path.realpath(os.path.abspath(os.path.expanduser(str(path))))
    base = os.path.realpath(os.path.abspath(root))
    if os.path.commonpath([full, base]) != base:
        return None
    return os.path.relpath(full, base).replace(os.sep, '/')


def portable_model_name(model: Any, root: str) -> Any:
    """A model name with a `local-dir:` folder made portable: relative to `root` inside it, else the folder's name
    alone (its location is not recorded). Other names are returned as they are."""
    if not isinstance(model, str) or not model.startswith(LOCAL_DIR):
        return model
    folder = model[len(LOCAL_DIR):]
    return LOCAL_DIR + (portable_path(folder, root) or os.path.basename(os.path.normpath(folder)))


def portable_run_args(run_args: Dict[str, Any], root: str) -> Dict[str, Any]:
    """A copy of `run_args` (see `args_to_dict`) whose paths (`PATH_ARGS`, a `local-dir:` model) are portable."""
    out = dict(run_args)
    for key in PATH_ARGS:
        if isinstance(out.get(key), str):
            out[key] = portable_path(out[key], root)
    if 'model' in out:
        out['model'] = portable_model_name(out['model'], root)
    return out
