"""train/validate.py end to end: a tiny image folder made here, a digits checkpoint, results files, bad input.

Its main() runs in the test's process (`call_validate`): none of these runs depends on a fresh interpreter, and each
saves one's start (about 5 s of CPU). Real validate.py processes run in tests/test_hub.py, where the environment they
start with matters (offline Hub caches, an unreachable Hub), the error's exit status included."""
import csv
import hashlib
import json
import subprocess
from pathlib import Path
from typing import List

import numpy as np
import pytest
import torch
from PIL import Image
from script_helpers import (
    REPO, assert_no_machine_paths, assert_one_line_error, call_main, run_script, shared_by_workers,
)

TRAIN = REPO / 'train' / 'train.py'
VALIDATE = REPO / 'train' / 'validate.py'
TIMM_FIELDS = ['model', 'top1', 'top1_err', 'top5', 'top5_err', 'param_count', 'img_size', 'crop_pct',
               'interpolation']


def run(script: Path, args: List[str], cwd: Path, timeout: float = 240) -> subprocess.CompletedProcess:
    return run_script(script, args, cwd, timeout)


def call_validate(args: List[str], capsys) -> subprocess.CompletedProcess:
    return call_main(VALIDATE, args, capsys)


@pytest.fixture(scope='module')
def digits_checkpoint(tmp_path_factory) -> Path:
    """A crelu_resnet20 trained for one epoch on 512 digits (a few seconds), evaluated on the full split."""
    def train(out: Path) -> Path:
        proc = run(TRAIN, ['--dataset', 'digits', '--model', 'crelu_resnet20', '--epochs', '1', '-b', '64',
                           '--train-num-samples', '512',
                           '--warmup-epochs', '0', '--lr', '0.1', '--train-crop-mode', 'pad', '--hflip', '0',
                           '--workers', '0', '--device', 'cpu', '--output', str(out), '--experiment', 'd'], cwd=out)
        assert proc.returncode == 0, proc.stderr[-4000:]
        return out / 'd' / 'last.pth.tar'
    return shared_by_workers(tmp_path_factory, 'digits_checkpoint', train)


@pytest.fixture(scope='module')
def image_folder(tmp_path_factory) -> Path:
    """ImageNet-style layout: <root>/validation/<class>/<image>.png, 3 classes x 4 images of 40x48 px."""
    root = tmp_path_factory.mktemp('folder')
    rng = np.random.default_rng(0)
    for c in ('n01', 'n02', 'n03'):
        d = root / 'validation' / c
        d.mkdir(parents=True)
        for i in range(4):
            Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(d / f'{i}.png')
    return root


@pytest.fixture(scope='module')
def folder_checkpoint(tmp_path_factory) -> Path:
    """A randomly initialised 3-class crelu_resnet20, saved as a bare state_dict (no training metadata)."""
    import timm
    import timm_nf  # noqa: F401
    path = tmp_path_factory.mktemp('ckpt') / 'crelu_resnet20_3cls.pth'
    torch.manual_seed(0)
    torch.save(timm.create_model('crelu_resnet20', num_classes=3).state_dict(), path)
    return path


def test_digits_checkpoint_matches_training_eval(digits_checkpoint: Path, tmp_path: Path, capsys):
    results_file = tmp_path / 'r.json'
    proc = call_validate(['--checkpoint', str(digits_checkpoint), '--dataset', 'digits', '--workers', '0',
                          '--results-file', str(results_file), '--results-format', 'json'], capsys)
    assert proc.returncode == 0, proc.stderr[-4000:]
    results = json.loads(results_file.read_text())
    assert isinstance(results, dict)  # one model: an object
    assert list(results)[:len(TIMM_FIELDS)] == TIMM_FIELDS
    # Model, classes, size and crop come from the training checkpoint.
    assert results['model'] == 'crelu_resnet20' and results['img_size'] == 32 and results['crop_pct'] == 1.0
    assert results['model_args'] == {'num_classes': 10}
    assert results['checkpoint_sha256'] == hashlib.sha256(digits_checkpoint.read_bytes()).hexdigest()
    # A checkpoint outside the repository is identified by its sha256 alone: its place on this machine is not written.
    assert results['checkpoint'] is None
    assert_no_machine_paths(results_file.read_text(), tmp_path, digits_checkpoint.parent, REPO)
    assert results['dataset'] == 'digits' and results['split'] == 'validation' and results['num_images'] == 360
    assert abs(results['top1'] + results['top1_err'] - 100) < 1e-6
    # Same weights, data and transforms as the training run's evaluation of its last epoch.
    with open(digits_checkpoint.parent / 'summary.csv', newline='') as f:
        last_eval = float(list(csv.DictReader(f))[-1]['eval_top1'])
    assert abs(results['top1'] - last_eval) < 0.01
    assert json.loads(proc.stdout.split('--result\n', 1)[1]) == results


def test_image_folder_csv(image_folder: Path, folder_checkpoint: Path, tmp_path: Path, capsys):
    results_file = tmp_path / 'r.csv'
    proc = call_validate(['--model', 'crelu_resnet20', '--checkpoint', str(folder_checkpoint), '--num-classes', '3',
                          '--data-dir', str(image_folder), '--split', 'validation', '--img-size', '32',
                          '--crop-pct', '0.875', '--interpolation', 'bicubic', '-b', '5', '--workers', '0',
                          '--channels-last', '--results-file', str(results_file)], capsys)
    assert proc.returncode == 0, proc.stderr[-4000:]
    with open(results_file, newline='') as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 1
    row = rows[0]
    assert list(row)[:len(TIMM_FIELDS)] == TIMM_FIELDS
    assert row['model'] == 'crelu_resnet20' and row['img_size'] == '32' and row['crop_pct'] == '0.875'
    assert row['interpolation'] == 'bicubic' and row['num_images'] == '12'
    assert json.loads(row['model_args']) == {'num_classes': 3}
    assert row['checkpoint_sha256'] == hashlib.sha256(folder_checkpoint.read_bytes()).hexdigest()
    assert 0 <= float(row['top1']) <= 100 and float(row['top5']) == 100.0  # 3 classes: top-5 covers all


def test_checkpoint_directory_json_list(image_folder: Path, folder_checkpoint: Path, tmp_path: Path, capsys):
    ckpt_dir = tmp_path / 'ckpts'
    ckpt_dir.mkdir()
    for name in ('a.pth', 'b.pth'):
        (ckpt_dir / name).write_bytes(folder_checkpoint.read_bytes())
    results_file = tmp_path / 'r.json'
    proc = call_validate(['--model', 'crelu_resnet20', '--checkpoint', str(ckpt_dir), '--num-classes', '3',
                          '--data-dir', str(image_folder), '--img-size', '32', '-b', '6', '--workers', '0',
                          '--results-file', str(results_file), '--results-format', 'json'], capsys)
    assert proc.returncode == 0, proc.stderr[-4000:]
    results = json.loads(results_file.read_text())
    # Both files outside the repository: named by sha256 only (the same bytes), never by their place on this machine.
    assert isinstance(results, list) and [r['checkpoint'] for r in results] == [None, None]
    assert {r['checkpoint_sha256'] for r in results} == {hashlib.sha256(folder_checkpoint.read_bytes()).hexdigest()}
    assert_no_machine_paths(results_file.read_text(), tmp_path, REPO)
    assert results[0]['top1'] == results[1]['top1']  # same weights


def test_model_list_file_without_pretrained_weights(image_folder: Path, tmp_path: Path, capsys):
    """A file of names validates each model's pretrained weights; ours have none offline: a clear error."""
    names = tmp_path / 'models.txt'
    names.write_text('crelu_resnet32\nnf_resnet20\n')
    proc = call_validate(['--model', str(names), '--data-dir', str(image_folder), '--workers', '0'], capsys)
    assert_one_line_error(proc, 'no model validated successfully')
    assert 'no pretrained weights' in proc.stderr
    names.write_text('crelu_resnet32\nnot_a_model_xyz\n')
    proc = call_validate(['--model', str(names), '--data-dir', str(image_folder), '--workers', '0'], capsys)
    assert_one_line_error(proc, 'unknown models: not_a_model_xyz')


def test_reparam_and_use_ema_fallback(digits_checkpoint: Path, tmp_path: Path, capsys):
    proc = call_validate(['--checkpoint', str(digits_checkpoint), '--dataset', 'digits', '--workers', '0',
                          '--use-ema', '--reparam', '--num-samples', '64'], capsys)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert 'no EMA weights' in proc.stderr


@pytest.fixture
def truncated(digits_checkpoint: Path, tmp_path: Path) -> Path:
    path = tmp_path / 'truncated.pth.tar'
    data = digits_checkpoint.read_bytes()
    path.write_bytes(data[:len(data) // 3])
    return path


def test_bad_input(digits_checkpoint: Path, folder_checkpoint: Path, truncated: Path, image_folder: Path,
                   tmp_path: Path, capsys):
    results_file = tmp_path / 'results.csv'
    common = ['--workers', '0', '--results-file', str(results_file)]
    cases = [
        (['--checkpoint', str(truncated), '--dataset', 'digits'], ['truncated']),
        (['--model', 'nf_resnet20', '--checkpoint', str(digits_checkpoint), '--dataset', 'digits'],
         ["does not fit model 'nf_resnet20'", "saved from 'crelu_resnet20'"]),
        (['--checkpoint', str(digits_checkpoint), '--dataset', 'digits', '--num-classes', '5'],
         ['has 10 classes', 'has 5', '--num-classes 10']),
        (['--model', 'crelu_resnet20', '--checkpoint', str(folder_checkpoint), '--num-classes', '3',
          '--dataset', 'digits'],
         ["split 'validation' has 10 classes", 'has 3', '--num-classes 10']),
        (['--model', 'crelu_resnet20', '--data-dir', str(tmp_path / 'missing')], ['does not exist']),
        (['--model', 'crelu_resnet20', '--dataset', 'cifar10'], ['unknown dataset']),
        (['--model', 'not_a_model_xyz'], ['unknown model']),
        (['--model', 'crelu_resnet20', '--model-kwargs', 'norm=layernorm', '--dataset', 'digits'],
         ["norm='layernorm'", "'batchnorm', 'none', 'normprop'"]),
        (['--model', 'normprop_resnet20', '--model-kwargs', 'normprop_consts=conv', '--dataset', 'digits'],
         ["normprop_consts='conv'", 'normprop_version=1']),
        (['--checkpoint', str(tmp_path / 'missing.pth.tar'), '--dataset', 'digits'], ['does not exist']),
    ]
    for args, phrases in cases:
        proc = call_validate([*args, *common], capsys)
        assert_one_line_error(proc, *phrases)
        assert not results_file.exists()  # nothing written


def test_published_folder_revalidates_to_its_card(tmp_path, capsys):
    """The committed Hub folder of crelu_resnet20.digits, loaded the way timm loads a local repo, gives the top-1 its
    card and results file state (the digits validation split is fixed, the model deterministic)."""
    import json as _json
    from huggingface_hub import ModelCard
    folder = REPO / 'hub' / 'published' / 'crelu_resnet20.digits'
    results = tmp_path / 'r.json'
    proc = call_validate(['--model', f'local-dir:{folder}', '--pretrained', '--dataset', 'digits', '--split',
                          'validation', '--workers', '0', '--results-file', str(results), '--results-format', 'json'],
                         capsys)
    assert proc.returncode == 0, proc.stderr[-3000:]
    row = _json.loads(results.read_text())
    top1 = row['top1']
    # The folder, given as an absolute path, is recorded relative to the repository: what its card tells a reader.
    assert row['model'] == 'local-dir:hub/published/crelu_resnet20.digits'
    assert_no_machine_paths(results.read_text(), REPO, tmp_path)
    card = ModelCard.load(folder / 'README.md')
    card_top1 = [r.metric_value for r in card.data.eval_results if r.metric_type == 'accuracy'][0]
    assert abs(top1 - card_top1) < 0.1
