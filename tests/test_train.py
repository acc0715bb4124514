"""train/train.py end to end: real subprocesses (and torchrun), real files, the embedded digits data.

Every run is tiny (32x32 digits subsets, a few steps, one thread) so the file stays well under a few minutes
on 2 CPU cores. Runs whose property needs no fresh interpreter call the script's main() in the test's process, from
the test's folder (`call_train`): that saves an interpreter start, about 5 s of CPU, each. Real processes stay where
the process is the point: the shared finished run (`trained`), kill and resume, torchrun, exit statuses, and
`--deterministic` (it sets torch's process-wide flag).
"""
import csv
import hashlib
import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import List

import pytest
import torch
import yaml
from script_helpers import (
    REPO, assert_no_machine_paths, assert_one_line_error, call_main, run_script, script_env, shared_by_workers,
)

TRAIN = REPO / 'train' / 'train.py'
VALIDATE = REPO / 'train' / 'validate.py'
SUMMARY_COLUMNS = ['epoch', 'train_loss', 'eval_loss', 'eval_top1', 'eval_top5', 'lr']

# A small digits run: 128 train / 64 validation images, batch 32 -> 4 updates per epoch.
FAST = [
    '--dataset', 'digits', '--train-num-samples', '128', '--val-num-samples', '64', '-b', '32',
    '--img-size', '32', '--crop-pct', '1.0', '--train-crop-mode', 'pad', '--hflip', '0', '--workers', '0',
    '--warmup-epochs', '0', '--lr', '0.05', '--log-interval', '2', '--device', 'cpu', '--seed', '0',
]


def run_train(args: List[str], cwd: Path, timeout: float = 240) -> subprocess.CompletedProcess:
    return run_script(TRAIN, args, cwd, timeout)


def call_train(args: List[str], capsys) -> subprocess.CompletedProcess:
    return call_main(TRAIN, args, capsys)


def read_summary(path: Path) -> List[dict]:
    with open(path, newline='') as f:
        return list(csv.DictReader(f))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope='module')
def trained(tmp_path_factory) -> Path:
    """One finished 2-epoch crelu_resnet20 digits experiment, shared by the read-only tests below."""
    def train(out: Path) -> Path:
        proc = run_train([*FAST, '--model', 'crelu_resnet20', '--epochs', '2', '--checkpoint-hist', '1',
                          '--output', str(out), '--experiment', 'exp'], cwd=out)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return out / 'exp'
    return shared_by_workers(tmp_path_factory, 'trained', train)


def test_outputs(trained: Path):
    for name in ('args.yaml', 'summary.csv', 'train.log', 'last.pth.tar', 'model_best.pth.tar'):
        assert (trained / name).is_file(), name
    # --checkpoint-hist 1: only the best numbered checkpoint is kept; no temporary files are left.
    assert len(list(trained.glob('checkpoint-*.pth.tar'))) == 1
    assert not [p for p in trained.iterdir() if '.tmp-' in p.name or p.name.startswith('tmp')]

    rows = read_summary(trained / 'summary.csv')
    assert [r['epoch'] for r in rows] == ['0', '1']
    assert list(rows[0].keys()) == SUMMARY_COLUMNS

    args = yaml.safe_load((trained / 'args.yaml').read_text())
    assert args['model'] == 'crelu_resnet20' and args['dataset'] == 'digits' and args['num_classes'] == 10

    # Plain torch.load with weights_only=True (no allow-list needed) reads our checkpoints.
    checkpoint = torch.load(trained / 'last.pth.tar', map_location='cpu', weights_only=True)
    assert checkpoint['epoch'] == 1 and checkpoint['arch'] == 'crelu_resnet20'
    assert checkpoint['model_args'] == {'num_classes': 10}
    assert isinstance(checkpoint['args'], dict) and 'state_dict' in checkpoint and 'optimizer' in checkpoint

    log = (trained / 'train.log').read_text()
    assert 'img/s' in log and 'Left:' in log and 'LR:' in log


def test_config_file_and_command_line_override(tmp_path: Path):
    config = tmp_path / 'cfg.yaml'
    config.write_text(yaml.safe_dump({'model': 'crelu_resnet20', 'epochs': 5, 'batch-size': 16, 'not_a_flag': 1}))
    proc = run_train(['--config', str(config), *FAST, '--epochs', '1', '--output', str(tmp_path),
                      '--experiment', 'cfg', '--deterministic', '--no-cudnn-benchmark'], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert 'not_a_flag' in proc.stderr  # unknown keys are named in a warning, not silently dropped
    assert 'Algorithms: deterministic algorithms' in proc.stderr
    args = yaml.safe_load((tmp_path / 'cfg' / 'args.yaml').read_text())
    assert args['deterministic'] is True and args['cudnn_benchmark'] is False
    assert args['epochs'] == 1  # command line wins
    assert args['batch_size'] == 32  # FAST's -b 32 overrides the file's batch-size 16
    assert args['model'] == 'crelu_resnet20'  # from the file


def test_args_yaml_names_files_relative_to_the_repository(tmp_path: Path, capsys, monkeypatch):
    """args.yaml and the checkpoints' `args` record the recipe relative to the repository and leave out the output
    folder, which lies elsewhere on this machine: nothing in them names this checkout or the temporary folder."""
    recipe = REPO / 'train' / 'recipes' / 'digits.yaml'
    monkeypatch.chdir(tmp_path)
    proc = call_train(['--config', str(recipe), *FAST, '--epochs', '1', '--output', str(tmp_path), '--experiment',
                       'paths', '--resume', 'auto'], capsys)
    assert proc.returncode == 0, proc.stderr[-4000:]
    text = (tmp_path / 'paths' / 'args.yaml').read_text()
    args = yaml.safe_load(text)
    assert (args['config'], args['output'], args['resume']) == ('train/recipes/digits.yaml', None, 'auto')
    assert args['model'] == 'crelu_resnet20' and args['epochs'] == 1  # from the recipe and the command line
    assert_no_machine_paths(text, tmp_path, REPO)
    checkpoint = torch.load(tmp_path / 'paths' / 'last.pth.tar', map_location='cpu', weights_only=True)
    assert checkpoint['args'] == args


# One model per family: CIFAR and ImageNet layouts, BatchNorm / NormProp / normalization-free. ImageNet-layout
# models run at 32x32 here (their stride-32 stem still leaves a 1x1 map).
FAMILY_MODELS = ['crelu_resnet20', 'normprop_resnet20', 'nf_resnet20', 'crelu_resnet18', 'nf_regnet_b0_crelu']


@pytest.mark.parametrize('model', FAMILY_MODELS)
def test_train_steps_per_family(model: str, tmp_path: Path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    proc = call_train([*FAST, '--model', model, '--epochs', '1', '--train-num-samples', '64', '--val-num-samples',
                       '32', '--output', str(tmp_path), '--experiment', 'run'], capsys)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    rows = read_summary(tmp_path / 'run' / 'summary.csv')
    assert len(rows) == 1
    assert all(float(rows[0][k]) == float(rows[0][k]) for k in ('train_loss', 'eval_loss'))  # not NaN


def test_mixup_ema_agc_drop_path(tmp_path: Path, capsys, monkeypatch):
    """The NF-RegNet recipe's machinery (mixup/cutmix, smoothing, EMA, drop path) plus AGC, for a few steps."""
    monkeypatch.chdir(tmp_path)
    proc = call_train([*FAST, '--model', 'nf_resnet20', '--epochs', '1', '--mixup', '0.2', '--cutmix', '1.0',
                       '--mixup-mode', 'elem', '--smoothing', '0.1', '--model-ema', '--model-ema-decay', '0.9',
                       '--drop-path', '0.1', '--clip-grad', '0.01', '--clip-mode', 'agc', '--sched-on-updates',
                       '--output', str(tmp_path), '--experiment', 'mix'], capsys)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert 'Test (EMA)' in proc.stderr
    checkpoint = torch.load(tmp_path / 'mix' / 'last.pth.tar', map_location='cpu', weights_only=True)
    assert 'state_dict_ema' in checkpoint


def test_kill_and_resume_auto(tmp_path: Path):
    args = [*FAST, '--model', 'crelu_resnet20', '--epochs', '3', '--output', str(tmp_path), '--experiment', 'kr',
            '--resume', 'auto', '--checkpoint-hist', '2']
    exp = tmp_path / 'kr'
    proc = subprocess.Popen([sys.executable, str(TRAIN), *args], cwd=tmp_path, env=script_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while not (exp / 'last.pth.tar').exists():
            assert proc.poll() is None, 'training ended before it could be killed'
            assert time.time() < deadline, 'no checkpoint within 120 s'
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    epochs_done = len(read_summary(exp / 'summary.csv'))
    assert 1 <= epochs_done < 3, 'the kill should land mid-run'

    resumed = run_train(args, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-4000:]
    assert 'continuing from' in resumed.stderr
    assert [r['epoch'] for r in read_summary(exp / 'summary.csv')] == ['0', '1', '2']
    assert torch.load(exp / 'last.pth.tar', map_location='cpu', weights_only=True)['epoch'] == 2
    assert len(list(exp.glob('checkpoint-*.pth.tar'))) == 2
    assert not [p for p in exp.iterdir() if '.tmp-' in p.name]

    # Running the finished experiment again trains nothing and changes nothing.
    last_sha = sha256(exp / 'last.pth.tar')
    again = run_train(args, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-4000:]
    assert sha256(exp / 'last.pth.tar') == last_sha
    assert len(read_summary(exp / 'summary.csv')) == 3


def test_torchrun_two_processes_gloo(tmp_path: Path):
    out = tmp_path / 'out'
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2', str(TRAIN),
           *FAST, '--model', 'crelu_resnet20', '--epochs', '2', '--output', str(out)]
    proc = subprocess.run(cmd, cwd=tmp_path, env=script_env(), capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert 'process 1 of 2' in proc.stderr  # really two ranks
    experiments = list(out.iterdir())
    assert len(experiments) == 1, experiments  # one set of outputs, written by rank 0 only
    exp = experiments[0]
    assert [r['epoch'] for r in read_summary(exp / 'summary.csv')] == ['0', '1']
    assert (exp / 'last.pth.tar').is_file() and (exp / 'model_best.pth.tar').is_file()
    checkpoint = torch.load(exp / 'last.pth.tar', map_location='cpu', weights_only=True)
    assert not any(k.startswith('module.') for k in checkpoint['state_dict'])  # DDP wrapper not saved


@pytest.fixture(scope='module')
def ddp_compiled(tmp_path_factory):
    """Two gloo processes training a depth-8 net with torch.compile, evaluating 33 images: the distributed sampler
    pads rank 1 with a second copy of image 0 to even the ranks out."""
    def train(out: Path):
        cmd = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2', str(TRAIN), *FAST,
               '--model', 'crelu_resnet20', '--model-kwargs', 'depth=8', '--img-size', '16', '--train-num-samples',
               '64', '--val-num-samples', '33', '--epochs', '1', '--torchcompile', 'aot_eager', '--output', str(out),
               '--experiment', 'exp']
        proc = subprocess.run(cmd, cwd=out, env=script_env(), capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
        return proc, out / 'exp'
    return shared_by_workers(tmp_path_factory, 'ddp_compiled', train)


def test_torchcompile_after_ddp_wrap(ddp_compiled):
    proc, exp = ddp_compiled
    assert 'training OptimizedModule(DistributedDataParallel(ResidualNet))' in proc.stderr  # compile(DDP(model))
    checkpoint = torch.load(exp / 'last.pth.tar', map_location='cpu', weights_only=True)
    assert not any(k.startswith(('module.', '_orig_mod.')) for k in checkpoint['state_dict'])  # wrappers not saved


def test_ddp_evaluation_counts_each_image_once(ddp_compiled, tmp_path: Path, capsys):
    """The per-epoch eval metrics of a DDP run are those of train/validate.py on the same weights and images."""
    _, exp = ddp_compiled
    row = read_summary(exp / 'summary.csv')[0]
    results_file = tmp_path / 'results.json'
    proc = call_main(VALIDATE, ['--checkpoint', str(exp / 'last.pth.tar'), '--dataset', 'digits', '--num-samples',
                                '33', '--device', 'cpu', '--workers', '0', '-b', '32', '--results-file',
                                str(results_file), '--results-format', 'json'], capsys)
    assert proc.returncode == 0, proc.stderr
    results = json.loads(results_file.read_text())
    assert results['num_images'] == 33
    assert 0 < float(row['eval_top1']) < 100  # else counting the padded copy could not show
    assert results['top1'] == round(float(row['eval_top1']), 4)
    assert results['top5'] == round(float(row['eval_top5']), 4)


def test_nan_loss_stops_and_keeps_last_good_checkpoint(trained: Path, tmp_path: Path):
    exp = tmp_path / 'exp'
    exp.mkdir()
    for name in ('last.pth.tar', 'summary.csv'):
        (exp / name).write_bytes((trained / name).read_bytes())
    before = {name: sha256(exp / name) for name in ('last.pth.tar', 'summary.csv')}
    # std 0 makes every normalized input inf / NaN, a real way to get a non-finite loss at the first step.
    proc = run_train([*FAST, '--model', 'crelu_resnet20', '--epochs', '3', '--output', str(tmp_path),
                      '--experiment', 'exp', '--resume', 'auto', '--mean', '0', '0', '0', '--std', '0', '0', '0'],
                     cwd=tmp_path)
    assert_one_line_error(proc, 'training loss is nan', 'last good checkpoint')
    assert proc.returncode == 3  # divergence, which train/study.py tells apart from bad input (1)
    assert {name: sha256(exp / name) for name in before} == before
    assert not list(exp.glob('checkpoint-*.pth.tar'))


@pytest.fixture
def truncated_checkpoint(trained: Path, tmp_path: Path) -> Path:
    path = tmp_path / 'truncated.pth.tar'
    data = (trained / 'last.pth.tar').read_bytes()
    path.write_bytes(data[:len(data) // 2])
    return path


def _bad_run(tmp_path: Path, capsys, *extra: str, model: str = 'crelu_resnet20') -> subprocess.CompletedProcess:
    return call_train([*FAST, '--model', model, '--epochs', '1', '--output', str(tmp_path / 'out'),
                       '--experiment', 'bad', *extra], capsys)


@pytest.mark.parametrize('extra, phrases', [
    (['--dataset', '', '--data-dir', '/nonexistent/imagenet'], ['data dir', 'does not exist']),
    (['--dataset', '', ], ['--data-dir is required']),
    (['--dataset', 'imagenet1k'], ['unknown dataset']),
    (['--num-classes', '5'], ['has 10 classes but --num-classes is 5', '--num-classes 10']),
    (['--train-split', 'test'], ["unknown split 'test'"]),
    (['--resume', '/nonexistent.pth.tar'], ['does not exist']),
    (['--config', '/nonexistent.yaml'], ['config file']),
    # a keyword value the family does not take: the key, the value and this family's choices (not the NF ones)
    (['--model-kwargs', 'norm=layernorm'], ["norm='layernorm'", "'batchnorm', 'none', 'normprop'"]),
    (['--model-kwargs', 'norm=none', 'weight_init=glorot'], ["weight_init='glorot'", "'torch7_default'"]),
    (['--model-kwargs', 'last_act=gelu'], ["last_act='gelu'", "'relu', 'crelu'"]),
    (['--model-kwargs', 'zero_init_last=True', 'norm=none'], ['zero_init_last=True', "norm='batchnorm'"]),
])
def test_bad_input(tmp_path: Path, capsys, extra: List[str], phrases: List[str]):
    proc = _bad_run(tmp_path, capsys, *extra)
    line = assert_one_line_error(proc, *phrases)
    assert 'scaled_ws' not in line
    assert not (tmp_path / 'out').exists()  # nothing written


def test_bad_input_exit_status_of_the_process(tmp_path: Path):
    """The same checks seen from the shell: exit status 1 and one `error:` line on stderr."""
    proc = run_train([*FAST, '--model', 'crelu_resnet20', '--dataset', 'imagenet1k', '--output', str(tmp_path / 'out')],
                     cwd=tmp_path)
    assert proc.returncode == 1
    assert_one_line_error(proc, "unknown dataset 'imagenet1k'")
    assert not (tmp_path / 'out').exists()


def test_bad_model(tmp_path: Path, capsys):
    assert_one_line_error(_bad_run(tmp_path, capsys, model='crelu_resnet21'), 'unknown model')
    assert not (tmp_path / 'out').exists()


@pytest.mark.parametrize('flag', ['--initial-checkpoint', '--resume'])
def test_truncated_checkpoint(tmp_path: Path, capsys, truncated_checkpoint: Path, flag: str):
    assert_one_line_error(_bad_run(tmp_path, capsys, flag, str(truncated_checkpoint)), 'truncated')
    assert not (tmp_path / 'out').exists()


@pytest.mark.parametrize('model, phrases', [
    ('nf_resnet20', ["does not fit model 'nf_resnet20'", "saved from 'crelu_resnet20'", 'missing keys']),
    ('crelu_resnet32', ["does not fit model 'crelu_resnet32'", 'missing keys']),
])
def test_checkpoint_of_another_architecture(tmp_path: Path, capsys, trained: Path, model: str, phrases: List[str]):
    proc = _bad_run(tmp_path, capsys, '--initial-checkpoint', str(trained / 'last.pth.tar'), model=model)
    assert_one_line_error(proc, *phrases)
    assert not (tmp_path / 'out').exists()


def test_checkpoint_num_classes_mismatch(tmp_path: Path, capsys, trained: Path):
    proc = _bad_run(tmp_path, capsys, '--initial-checkpoint', str(trained / 'last.pth.tar'), '--num-classes', '12')
    assert_one_line_error(proc, 'has 10 classes', 'has 12', '--num-classes 10')
    assert not (tmp_path / 'out').exists()


def test_existing_experiment_is_not_overwritten(tmp_path: Path, capsys, trained: Path):
    before = sha256(trained / 'last.pth.tar')
    proc = call_train([*FAST, '--model', 'crelu_resnet20', '--epochs', '1', '--output', str(trained.parent),
                       '--experiment', trained.name], capsys)
    assert_one_line_error(proc, 'already holds checkpoints', '--resume auto')
    assert sha256(trained / 'last.pth.tar') == before
