"""The package as a user installs it: a built wheel, installed outside the checkout, used from another directory.

The editable install the other tests use sees the whole checkout; a wheel sees only what it ships. This test builds
the sdist and, from it, the wheel (as `python -m build` and pip do), installs the wheel into a fresh virtualenv that
borrows this one's dependencies but not its editable `timm_nf`, and runs everything an installed package promises
from a temporary directory: every module imports without side effects beyond timm registration, every family builds
and runs, `features_only` and `fold_for_inference` work, a copy of a published folder loads with `local-dir:` and
reproduces its card's top-1, and every `python -m timm_nf...` command writes its outputs.
"""
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PUBLISHED = REPO / 'hub' / 'published' / 'crelu_resnet20.digits'

# Runs inside the wheel's virtualenv, with a temporary directory as the working directory.
USER_SCRIPT = r'''
import importlib, json, pkgutil, sys
from pathlib import Path

import torch
import timm
from huggingface_hub import ModelCard

import timm_nf

report = {'timm_nf_file': timm_nf.__file__, 'version': timm_nf.__version__}
modules = sorted(m.name for m in pkgutil.walk_packages(timm_nf.__path__, 'timm_nf.'))
for name in modules:
    importlib.import_module(name)
report['modules'] = modules
from torch.optim import optimizer as optim_module
report['optimizer_hooks'] = len(optim_module._global_optimizer_pre_hooks) + len(
    optim_module._global_optimizer_post_hooks)

torch.manual_seed(0)
outputs = {}
for name in ('crelu_resnet20', 'normprop_resnet20', 'nf_resnet20', 'nf_regnet_b0_crelu'):
    model = timm.create_model(name, num_classes=7).eval()
    size = model.pretrained_cfg['input_size'][1] if 'regnet' not in name else 64
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        y = model(x)
        folded = timm_nf.fold_for_inference(model)(x)
    features = timm.create_model(name, features_only=True).eval()(x)
    outputs[name] = {
        'shape': list(y.shape), 'finite': bool(torch.isfinite(y).all()),
        'fold_diff': float((folded - y).abs().max()), 'n_features': len(features),
    }
report['families'] = outputs

folder = Path(sys.argv[1])
model = timm.create_model(f'local-dir:{folder}', pretrained=True).eval()
card = ModelCard.load(folder / 'README.md')
report['card_top1'] = [r.metric_value for r in card.data.eval_results if r.metric_type == 'accuracy'][0]

from timm.data import create_transform, resolve_data_config
from timm_nf.data import DigitsDataset

transform = create_transform(**resolve_data_config({}, model=model))
dataset = DigitsDataset('validation', transform=transform)
loader = torch.utils.data.DataLoader(dataset, batch_size=128)
correct = 0
with torch.no_grad():
    for images, targets in loader:
        correct += int((model(images).argmax(1) == targets).sum())
report['top1'] = 100.0 * correct / len(dataset)
print(json.dumps(report))
'''


def _run(cmd, cwd, env=None, timeout=600):
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f'{cmd}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}'
    return proc


@pytest.fixture(scope='module')
def dists(tmp_path_factory):
    """sdist and wheel of this checkout, the wheel built from the sdist (what pip does with an sdist)."""
    out = tmp_path_factory.mktemp('dist')
    # A copy of the tracked files: the build writes egg-info next to the sources, and other tests read the checkout.
    src = tmp_path_factory.mktemp('src')
    files = subprocess.run(['git', 'ls-files', '-z'], cwd=REPO, capture_output=True, check=True).stdout.split(b'\0')
    for rel in filter(None, (f.decode() for f in files)):
        if (REPO / rel).is_file():
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, src / rel)
    _run([sys.executable, '-m', 'build', '--no-isolation', '--outdir', str(out), str(src)], cwd=src)
    wheel, = out.glob('timm_nf-*.whl')
    sdist, = out.glob('timm_nf-*.tar.gz')
    return wheel, sdist


@pytest.fixture(scope='module')
def wheel_python(dists, tmp_path_factory):
    """A virtualenv with the wheel installed and this environment's dependencies on its path, not its timm_nf."""
    venv = tmp_path_factory.mktemp('venv')
    _run([sys.executable, '-m', 'venv', '--without-pip', str(venv)], cwd=venv)
    python = venv / 'bin' / 'python'
    site = Path(_run([str(python), '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])'],
                     cwd=venv).stdout.strip())
    # A .pth line only adds the directory: the .pth files inside it (this environment's editable timm_nf) are not
    # processed, so the wheel's copy is the only timm_nf the new environment can import.
    (site / 'borrowed_dependencies.pth').write_text(sysconfig.get_paths()['purelib'] + '\n')
    _run([sys.executable, '-m', 'pip', 'install', '--no-deps', '--no-index', '--target', str(site), str(dists[0])],
         cwd=venv)
    return python


def _clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in ('PYTHONPATH', 'HF_TOKEN')}
    env.update(OMP_NUM_THREADS='1', HF_HUB_OFFLINE='1', **extra)
    return env


def _check_contents(wheel: Path, sdist: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    dist_info = wheel.name.split('-py3')[0] + '.dist-info'
    assert {n.split('/')[0] for n in names} == {'timm_nf', dist_info}, names  # no train/, hub/, tests/
    assert f'{dist_info}/licenses/LICENSE' in names, names
    moved_out = ('timm_nf/study.py', 'timm_nf/probe.py', 'timm_nf/probe_momentum_reset.py', 'timm_nf/model_cards.py')
    assert not [n for n in names if n in moved_out or n.startswith('timm_nf/hub/')], names
    metadata = zipfile.ZipFile(wheel).read(f'{dist_info}/METADATA').decode()
    assert 'License-Expression: Apache-2.0' in metadata
    assert 'Requires-Dist: torch>=' in metadata and 'torch<' not in metadata and 'torchvision<' not in metadata
    import timm_nf
    assert f'Version: {timm_nf.__version__}' in metadata
    with tarfile.open(sdist) as tar:
        assert any(m.endswith('/LICENSE') for m in tar.getnames())


# (module and arguments, files it must write): every `python -m timm_nf...` command the package ships.
MODULE_COMMANDS = [
    (['timm_nf.analysis', 'spp', '--model', 'nf_resnet20', '--batch-size', '2', '--no-progress', '--out', 'spp'],
     ['spp/spp.csv', 'spp/spp.png']),
    (['timm_nf.analysis', 'delta', '--model', 'crelu_resnet20', '--batch-size', '2', '--no-progress', '--out', 'delta'],
     ['delta/delta.csv', 'delta/delta.png']),
    (['timm_nf.demo'], []),
]


def test_installed_wheel_works_outside_the_checkout(dists, wheel_python, tmp_path):
    """One test, so that the wheel is built and installed once (xdist spreads tests, not module fixtures)."""
    _check_contents(*dists)

    folder = tmp_path / 'crelu_resnet20.digits'
    shutil.copytree(PUBLISHED, folder)
    workdir = tmp_path / 'user'
    workdir.mkdir()
    (workdir / 'user.py').write_text(USER_SCRIPT)
    proc = _run([str(wheel_python), 'user.py', str(folder)], cwd=workdir, env=_clean_env())
    report = json.loads(proc.stdout.strip().splitlines()[-1])

    assert Path(report['timm_nf_file']).is_relative_to(wheel_python.parents[1]), report['timm_nf_file']
    assert report['optimizer_hooks'] == 0, "importing the package must not change other code's optimizers"
    assert {'timm_nf.models.crelu_resnet', 'timm_nf.training.trainer', 'timm_nf.analysis.runner'} <= set(
        report['modules'])
    for name, out in report['families'].items():
        assert out['shape'] == [2, 7] and out['finite'], (name, out)
        assert out['fold_diff'] < 1e-3, (name, out)
        assert out['n_features'] >= 4, (name, out)
    assert report['top1'] == pytest.approx(report['card_top1'], abs=1e-3), report

    for command, outputs in MODULE_COMMANDS:
        proc = _run([str(wheel_python), '-m', *command], cwd=workdir, env=_clean_env())
        for rel in outputs:
            assert (workdir / rel).is_file() and (workdir / rel).stat().st_size > 0, (command, rel)
        if not outputs:
            assert 'crelu_resnet20' in proc.stdout, proc.stdout
