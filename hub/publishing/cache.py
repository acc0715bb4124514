"""Offline round trip of a publication folder through the Hugging Face Hub cache layout.

`install_in_hf_cache` lays the folder out exactly as `hf download OWNER/REPO` leaves it in the cache:

    <cache>/models--OWNER--REPO/blobs/<etag>                      file contents
    <cache>/models--OWNER--REPO/snapshots/<commit>/<file>         -> ../../blobs/<etag> (symlink, else a copy)
    <cache>/models--OWNER--REPO/refs/main                         the commit hash, no trailing newline

so that with `HF_HUB_OFFLINE=1 HF_HUB_CACHE=<cache>` huggingface_hub (and so timm's `hf-hub:` loader and pretrained
tags) finds the files without a network. `verify_round_trip` does that in a fresh interpreter (huggingface_hub
reads its environment once, at import) and compares what timm loads with the checkpoint.

Usage (from the repository root): ``python -m hub.publishing.cache --folder DIR --repo-id OWNER/REPO --checkpoint CKPT [--tag NAME.TAG] [--ema]``
"""
import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict, Optional

from .results import REPO_ROOT

__all__ = ['install_in_hf_cache', 'verify_round_trip', 'repo_cache_dir']


def repo_cache_dir(cache_dir: str, repo_id: str) -> Path:
    """`<cache>/models--OWNER--REPO`, as huggingface_hub names it."""
    return Path(cache_dir) / ('models--' + repo_id.replace('/', '--'))


def _etag(path: Path) -> str:
    # The Hub's etags: sha256 for LFS files (weights), git blob sha1 for the others.
    data = path.read_bytes()
    if path.suffix == '.safetensors':
        return hashlib.sha256(data).hexdigest()
    return hashlib.sha1(b'blob %d\0' % len(data) + data).hexdigest()


def install_in_hf_cache(folder: str, repo_id: str, cache_dir: str, revision: str = 'main') -> Path:
    """Put the files of `folder` in the Hub cache `cache_dir` as revision `revision` of `repo_id`.

    Returns:
        The snapshot folder.
    """
    src = Path(folder)
    names = sorted(n for n in os.listdir(src) if (src / n).is_file())
    etags = {n: _etag(src / n) for n in names}
    commit = hashlib.sha1(json.dumps(etags, sort_keys=True).encode()).hexdigest()  # 40 hex, like a git commit
    repo = repo_cache_dir(cache_dir, repo_id)
    (repo / 'blobs').mkdir(parents=True, exist_ok=True)
    (repo / 'refs').mkdir(parents=True, exist_ok=True)
    snapshot = repo / 'snapshots' / commit
    snapshot.mkdir(parents=True, exist_ok=True)
    for name in names:
        blob = repo / 'blobs' / etags[name]
        if not blob.exists():
            shutil.copyfile(src / name, blob)
        link = snapshot / name
        if link.exists() or link.is_symlink():
            link.unlink()
        try:
            os.symlink(os.path.relpath(blob, snapshot), link)
        except OSError:
            shutil.copyfile(blob, link)  # filesystems without symlinks: huggingface_hub copies too
    (repo / 'refs' / revision).parent.mkdir(parents=True, exist_ok=True)
    (repo / 'refs' / revision).write_text(commit)  # exactly the hash: a trailing newline breaks the lookup
    return snapshot


def verify_round_trip(
        folder: str,
        repo_id: str,
        checkpoint: str,
        tag_name: str = '',
        use_ema: bool = False,
        timeout: float = 300,
) -> Dict[str, Any]:
    """Install `folder` in a temporary Hub cache and load it offline in a fresh interpreter.

    Loads `hf-hub:<repo_id>`, `local-dir:<folder>` and, if given, the pretrained tag `tag_name`, each with
    `pretrained=True` under `HF_HUB_OFFLINE=1`, and compares state dicts and outputs with the checkpoint.

    Returns:
        {source: {'max_weight_diff', 'max_output_diff', 'same_keys'}} and 'ok'.
    """
    with tempfile.TemporaryDirectory(prefix='timm-nf-hub-cache-') as cache:
        install_in_hf_cache(folder, repo_id, cache)
        env = dict(os.environ, HF_HUB_OFFLINE='1', HF_HUB_CACHE=cache, HF_HOME=cache)
        # The child runs this module by name, which lives in the checkout rather than the installed package.
        env['PYTHONPATH'] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get('PYTHONPATH', '')) if p)
        env.pop('HF_HUB_DISABLE_SYMLINKS_WARNING', None)
        cmd = [sys.executable, '-m', 'hub.publishing.cache', '--child', '--folder', folder, '--repo-id', repo_id,
               '--checkpoint', checkpoint]
        if tag_name:
            cmd += ['--tag', tag_name]
        if use_ema:
            cmd.append('--ema')
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ['no output'])[-1]
        raise RuntimeError(f'offline round trip failed: {last}')
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _child(folder: str, repo_id: str, checkpoint: str, tag_name: Optional[str], use_ema: bool) -> Dict[str, Any]:
    import torch

    import timm
    import timm_nf  # noqa: F401  (registers the models and tags)
    from timm_nf.training.checkpoint import checkpoint_state_dict, load_checkpoint_file

    ref = checkpoint_state_dict(load_checkpoint_file(checkpoint), checkpoint, use_ema=use_ema)
    sources = {'hf-hub': f'hf-hub:{repo_id}', 'local-dir': f'local-dir:{folder}'}
    if tag_name:
        sources['tag'] = tag_name
    torch.manual_seed(0)
    report: Dict[str, Any] = {}
    outputs = {}
    for key, name in sources.items():
        model = timm.create_model(name, pretrained=True).eval()
        sd = model.state_dict()
        same_keys = set(sd) == set(ref)
        diff = max((float((sd[k].float() - ref[k].float()).abs().max()) for k in ref if k in sd), default=0.0)
        size = model.pretrained_cfg['input_size']
        x = torch.randn(2, *size, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            outputs[key] = model(x)
        report[key] = dict(same_keys=same_keys, max_weight_diff=diff, arch=type(model).__name__,
                           num_classes=model.num_classes, input_size=list(size))
    # The reference model: rebuilt from config.json's architecture and model_args, loaded from the checkpoint.
    cfg = json.loads((Path(folder) / 'config.json').read_text())
    ref_model = timm.create_model(cfg['architecture'], **cfg.get('model_args', {})).eval()
    ref_model.load_state_dict(ref, strict=True)
    size = cfg['pretrained_cfg']['input_size']
    x = torch.randn(2, *size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = ref_model(x)
    for key in sources:
        report[key]['max_output_diff'] = float((outputs[key] - expected).abs().max())
    report['ok'] = all(r['same_keys'] and r['max_weight_diff'] == 0 and r['max_output_diff'] == 0
                       for k, r in report.items() if k in sources)
    return report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description='Offline round trip of a publication folder via the Hub cache')
    parser.add_argument('--folder', required=True)
    parser.add_argument('--repo-id', required=True)
    parser.add_argument('--checkpoint', required=True)
    parser.add_argument('--tag', default='', help='registered pretrained tag to load too (model.tag)')
    parser.add_argument('--ema', action='store_true', help='compare with the checkpoint\'s EMA weights')
    parser.add_argument('--child', action='store_true', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(_child(args.folder, args.repo_id, args.checkpoint, args.tag, args.ema)))
        return 0
    report = verify_round_trip(args.folder, args.repo_id, args.checkpoint, args.tag, args.ema)
    print(json.dumps(report, indent=2))
    return 0 if report['ok'] else 1


if __name__ == '__main__':
    raise SystemExit(main())
