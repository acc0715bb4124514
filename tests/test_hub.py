"""hub/publish.py end to end: real checkpoints (trained here for a few steps), real safetensors, the real Hugging
Face Hub cache layout, and timm loading offline in subprocesses (huggingface_hub reads HF_HUB_OFFLINE and its
cache paths once, at import). Upload failures are real: offline mode and a closed port on loopback."""
import hashlib
import http.server
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import threading
from pathlib import Path
from typing import Dict, List, Tuple

import pytest
import safetensors
import safetensors.torch
import torch
import yaml
from huggingface_hub import ModelCard

import timm
from hub.publishing import (
    MAX_WEIGHTS_IN_GIT, REPO_ROOT, architecture_differences, entry_results, install_in_hf_cache, study_seeds,
)
from hub.publishing.model_cards import FAMILIES, our_models
from timm_nf.pretrained import PUBLISHED, NoPretrainedWeightsError, find_published
from script_helpers import (
    REPO, assert_no_machine_paths, assert_one_line_error, call_main, run_main, script_env, shared_by_workers,
)

TRAIN = REPO / 'train' / 'train.py'
VALIDATE = REPO / 'train' / 'validate.py'
PUBLISH = REPO / 'hub' / 'publish.py'
TAG_REPO = 'timm-nf/crelu_resnet20.digits'
TINY = ['--dataset', 'digits', '--model', 'crelu_resnet20', '--epochs', '1', '-b', '32', '--train-num-samples', '96',
        '--val-num-samples', '32', '--img-size', '32', '--crop-pct', '1.0', '--warmup-epochs', '0', '--lr', '0.05',
        '--hflip', '0', '--workers', '0', '--device', 'cpu', '--seed', '0']


# A Hub endpoint on loopback that accepts every connection and drops it at once: unreachable the way a refused port
# is, at half the wait. huggingface_hub retries either with backoff (about 23 s of sleep); against a refused port
# timm's lookup then does the same for its second file name, against a dropped connection it stops (measured with
# huggingface_hub 2.4.0, `validate.py --pretrained` of a tag: 58 s against 23 s). Parametrized environments name it
# as UNREACHABLE and `hub_env` puts in its address.
UNREACHABLE = 'http://unreachable.invalid'


@pytest.fixture(scope='module')
def dropping_hub():
    server = socket.socket()
    server.bind(('127.0.0.1', 0))
    server.listen(64)

    def serve():
        while True:
            try:
                conn, _ = server.accept()
            except OSError:  # closed at teardown
                return
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))  # reset, not FIN
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    yield f'http://127.0.0.1:{server.getsockname()[1]}'
    server.close()


def hub_env(env: Dict[str, str], dropping_hub: str) -> Dict[str, str]:
    return {k: dropping_hub if v == UNREACHABLE else v for k, v in env.items()}


def run(args: List[str], cwd: Path, timeout: float = 240, **env: str) -> subprocess.CompletedProcess:
    return run_together(cwd, (args, env), timeout=timeout)[0]


def run_together(cwd: Path, *commands: Tuple[List[str], Dict[str, str]],
                 timeout: float = 240) -> List[subprocess.CompletedProcess]:
    """`python args...` with `script_env(**env)` for each (args, env), all started at once: the ~23 s backoff sleeps
    of runs against an unreachable Hub overlap instead of adding up."""
    procs = [subprocess.Popen([sys.executable, *args], cwd=cwd, env=script_env(**env), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for args, env in commands]
    try:
        done = []
        for proc in procs:
            out, err = proc.communicate(timeout=timeout)
            done.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
        return done
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def publish(args: List[str], capsys) -> subprocess.CompletedProcess:
    return call_main(PUBLISH, args, capsys)


def snapshot(folder: Path) -> Dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def _train_and_validate(root: Path, extra_train: List[str], extra_val: List[str]) -> Dict[str, Path]:
    """train.py and validate.py in this process (`run_main`): what they write is the input here, and real processes
    of both run in tests/test_train.py and below."""
    proc = run_main(TRAIN, [*TINY, *extra_train, '--output', str(root), '--experiment', 'run'], cwd=root)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ckpt = root / 'run' / 'last.pth.tar'
    results = root / 'results.json'
    proc = run_main(VALIDATE, ['--checkpoint', str(ckpt), '--dataset', 'digits', '--num-samples', '64', '--workers',
                               '0', '--device', 'cpu', '--results-file', str(results), '--results-format', 'json',
                               *extra_val], cwd=root)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return dict(checkpoint=ckpt, results=results, args=root / 'run' / 'args.yaml')


@pytest.fixture(scope='module')
def tiny_run(tmp_path_factory) -> Dict[str, Path]:
    """crelu_resnet20 with its defaults, trained for 3 steps on digits and validated."""
    return shared_by_workers(tmp_path_factory, 'tiny_run', lambda root: _train_and_validate(root, [], []))


@pytest.fixture(scope='module')
def variant_run(tmp_path_factory) -> Dict[str, Path]:
    """A keyword variant (act_layer=relu) with EMA weights, validated with them."""
    return shared_by_workers(tmp_path_factory, 'variant_run', lambda root: _train_and_validate(
        root, ['--model-kwargs', 'act_layer=relu', '--model-ema'], ['--use-ema']))


@pytest.fixture(scope='module')
def tag_folder(tiny_run, tmp_path_factory) -> Path:
    def publish_tiny_run(root: Path) -> Path:
        out = root / 'crelu_resnet20.digits'
        proc = run_main(PUBLISH, ['--checkpoint', str(tiny_run['checkpoint']), '--model', 'crelu_resnet20', '--tag',
                                  'digits', '--results', str(tiny_run['results']), '--out', str(out)], cwd=root)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return out
    return shared_by_workers(tmp_path_factory, 'tag_folder', publish_tiny_run)


def _ckpt_state(path: Path, key: str = 'state_dict') -> Dict[str, torch.Tensor]:
    return torch.load(path, map_location='cpu', weights_only=True)[key]


# What timm loads offline, saved by a fresh interpreter for the parent to compare.
LOAD_SCRIPT = r'''
import sys, torch, timm, timm_nf, safetensors.torch
out, names = sys.argv[1], sys.argv[2:]
x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
tensors = {'input': x}
for i, name in enumerate(names):
    model = timm.create_model(name, pretrained=True).eval()
    with torch.no_grad():
        tensors[f'{i}/output'] = model(x)
    for k, v in model.state_dict().items():
        tensors[f'{i}/sd/{k}'] = v
    print(name, type(model).__name__, getattr(model, 'cfg', None).act_layer, model.num_classes)
safetensors.torch.save_file(tensors, out)
'''


def load_offline(cache: Path, names: List[str], tmp_path: Path) -> Dict[str, torch.Tensor]:
    out = tmp_path / 'loaded.safetensors'
    proc = run(['-c', LOAD_SCRIPT, str(out), *names], cwd=tmp_path, HF_HUB_OFFLINE='1', HF_HUB_CACHE=str(cache),
               HF_HOME=str(cache))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return safetensors.torch.load_file(out)


def reference_outputs(model_name: str, model_kwargs: dict, state: Dict[str, torch.Tensor], x: torch.Tensor):
    model = timm.create_model(model_name, **model_kwargs).eval()
    model.load_state_dict(state, strict=True)
    with torch.no_grad():
        return model(x)


# Publishing ---------------------------------------------------------------------------------------------------

def test_tag_folder_holds_weights_config_card_hparams(tag_folder: Path, tiny_run):
    assert sorted(os.listdir(tag_folder)) == ['README.md', 'config.json', 'model.safetensors', 'train_hparams.yaml']
    assert not [p for p in tag_folder.parent.iterdir() if p.name.startswith('.publish-')]  # no staging left
    ref = _ckpt_state(tiny_run['checkpoint'])
    with safetensors.safe_open(str(tag_folder / 'model.safetensors'), 'pt') as f:
        meta = f.metadata()
        weights = {k: f.get_tensor(k) for k in f.keys()}
    assert meta['format'] == 'pt' and meta['architecture'] == 'crelu_resnet20' and meta['weights'] == 'model'
    assert meta['pretrained_tag'] == 'digits' and json.loads(meta['model_args']) == {'num_classes': 10}
    assert meta['checkpoint_sha256'] == hashlib.sha256(tiny_run['checkpoint'].read_bytes()).hexdigest()
    assert set(weights) == set(ref)  # weights only: no optimizer state, no EMA
    assert all(torch.equal(weights[k], ref[k]) and weights[k].is_contiguous() for k in ref)

    config = json.loads((tag_folder / 'config.json').read_text())
    assert config['architecture'] == 'crelu_resnet20' and config['num_classes'] == 10
    # the CReLU after the last addition (last_act, docs/REPRODUCTION.md) feeds 2 x 64 features to the head
    assert config['num_features'] == 128 and config['global_pool'] == 'avg'
    assert config['label_names'] == [str(i) for i in range(10)]
    assert config['model_args'] == {'num_classes': 10, 'in_chans': 3, 'global_pool': 'avg'}
    pcfg = config['pretrained_cfg']
    entry = find_published('crelu_resnet20', 'digits')
    assert pcfg['input_size'] == list(entry.input_size) and pcfg['crop_pct'] == entry.crop_pct
    assert pcfg['interpolation'] == entry.interpolation
    assert pcfg['mean'] == list(entry.mean) and pcfg['std'] == list(entry.std)
    assert 'hf_hub_id' not in pcfg and 'file' not in pcfg
    assert (tag_folder / 'train_hparams.yaml').read_bytes() == tiny_run['args'].read_bytes()
    # Nothing in the folder names this checkout or the temporary folders the run and the folder live in.
    header = (tag_folder / 'model.safetensors').read_bytes()[:100_000].decode('latin-1')
    for text in [header] + [(tag_folder / n).read_text() for n in ('README.md', 'config.json', 'train_hparams.yaml')]:
        assert_no_machine_paths(text, REPO, tag_folder.parent, tiny_run['checkpoint'].parent)


def test_card_parses_and_its_metrics_are_the_results_file(tag_folder: Path, tiny_run):
    card = ModelCard.load(tag_folder / 'README.md')
    data = card.data
    assert data.library_name == 'timm' and data.pipeline_tag == 'image-classification'
    # scikit-learn's digits have no dataset on the Hub: no `datasets:` id rather than one that does not exist
    assert data.license == 'apache-2.0' and data.datasets is None and 'timm' in data.tags
    results = json.loads(tiny_run['results'].read_text())
    metrics = {r.metric_type: r.metric_value for r in data.eval_results}
    assert metrics == {'accuracy': results['top1'], 'top_5_accuracy': results['top5']}
    assert {r.dataset_split for r in data.eval_results} == {'validation'}
    text = card.text
    for section in ('## Model Details', 'Params (M): 0.416', 'GMACs: 0.062', 'Activations (M)', 'Image size: 32 x 32',
                    '### Image Classification', '### Feature Map Extraction', '### Image Embeddings',
                    '## Model Comparison', '## Citation', f"| {results['top1']:.2f} |",
                    # install first, then where the weights are and the call that loads them
                    'clone the timm-nf repository', 'pip install .', "pip install '.[digits]'",
                    'hub/published/crelu_resnet20.digits/', "timm.create_model('local-dir:hub/published/"
                    "crelu_resnet20.digits', pretrained=True)", "timm.create_model('crelu_resnet20.digits', "
                    "pretrained=True)", 'python hub/publish.py --all --push',
                    # each number with its dataset, split and images, and what was chosen on that split
                    f"| top-1 accuracy | {results['top1']:.2f}% | digits | validation | 64 | nothing",
                    'Nothing was chosen on this split', 'final weights of a single training run (seed 0)',
                    # the dataset's citation
                    'doi={10.24432/C50P49}'):
        assert section in text, section
    assert text.index('pip install .') < text.index('## Evaluation') < text.index('## Model Details')
    assert 'hf download' not in text  # nothing suggests the Hub holds the weights before a push


def test_offline_round_trip_through_the_hub_cache(tag_folder: Path, tiny_run, tmp_path: Path):
    cache = tmp_path / 'hf-cache'
    snap = install_in_hf_cache(str(tag_folder), TAG_REPO, str(cache))
    repo_dir = cache / 'models--timm-nf--crelu_resnet20.digits'
    ref_main = (repo_dir / 'refs' / 'main').read_text()
    assert ref_main == snap.name and len(ref_main) == 40 and not ref_main.endswith('\n')
    assert sorted(os.listdir(snap)) == sorted(os.listdir(tag_folder))

    names = [f'hf-hub:{TAG_REPO}', 'crelu_resnet20.digits', f'local-dir:{tag_folder}']
    loaded = load_offline(cache, names, tmp_path)
    ref = _ckpt_state(tiny_run['checkpoint'])
    expected = reference_outputs('crelu_resnet20', {'num_classes': 10}, ref, loaded['input'])
    for i in range(len(names)):
        state = {k[len(f'{i}/sd/'):]: v for k, v in loaded.items() if k.startswith(f'{i}/sd/')}
        assert set(state) == set(ref), names[i]
        assert all(torch.equal(state[k], ref[k]) for k in ref), names[i]
        assert torch.equal(loaded[f'{i}/output'], expected), names[i]


def test_keyword_variant_is_an_hf_hub_repo_with_ema_weights(variant_run, tmp_path: Path, capsys):
    out = tmp_path / 'variant'
    proc = publish(['--checkpoint', str(variant_run['checkpoint']), '--model', 'crelu_resnet20', '--repo-id',
                    'someone/crelu_resnet20_relu.digits', '--results', str(variant_run['results']), '--ema',
                    '--out', str(out)], capsys)
    assert proc.returncode == 0, proc.stderr
    config = json.loads((out / 'config.json').read_text())
    assert config['model_args']['act_layer'] == 'relu'
    with safetensors.safe_open(str(out / 'model.safetensors'), 'pt') as f:
        assert f.metadata()['weights'] == 'ema'
    card = ModelCard.load(out / 'README.md')
    assert card.data.eval_results[0].metric_value == json.loads(variant_run['results'].read_text())['top1']
    assert "`act_layer='relu'`" in card.text and 'hf-hub:someone/crelu_resnet20_relu.digits' in card.text

    cache = tmp_path / 'hf-cache'
    install_in_hf_cache(str(out), 'someone/crelu_resnet20_relu.digits', str(cache))
    loaded = load_offline(cache, ['hf-hub:someone/crelu_resnet20_relu.digits'], tmp_path)
    ema = _ckpt_state(variant_run['checkpoint'], 'state_dict_ema')
    model_weights = _ckpt_state(variant_run['checkpoint'])
    state = {k[len('0/sd/'):]: v for k, v in loaded.items() if k.startswith('0/sd/')}
    assert all(torch.equal(state[k], ema[k]) for k in ema)
    assert not all(torch.equal(state[k], model_weights[k]) for k in ema)  # the EMA, not the model weights
    expected = reference_outputs('crelu_resnet20', {'num_classes': 10, 'act_layer': 'relu'}, ema, loaded['input'])
    assert torch.equal(loaded['0/output'], expected)


def test_keyword_variant_is_refused_as_a_tag(variant_run, tmp_path: Path, capsys):
    out = tmp_path / 'refused'
    proc = publish(['--checkpoint', str(variant_run['checkpoint']), '--model', 'crelu_resnet20.digits', '--results',
                    str(variant_run['results']), '--ema', '--out', str(out)], capsys)
    assert_one_line_error(proc, 'keyword variant', "act_layer: 'crelu' -> 'relu'", 'hf-hub:')
    assert not out.exists()


def test_ema_choice_must_be_explicit_when_results_do_not_say(variant_run, tmp_path: Path, capsys):
    # A results row that does not record which weights it measured (older files, timm's validate.py): with both
    # sets in the checkpoint, ask.
    row = json.loads(variant_run['results'].read_text())
    assert row['use_ema'] is True  # train/validate.py records which weights it measured (--use-ema here)
    unlabelled = tmp_path / 'unlabelled.json'
    unlabelled.write_text(json.dumps({k: v for k, v in row.items() if k != 'use_ema'}))
    proc = publish(['--checkpoint', str(variant_run['checkpoint']), '--model', 'crelu_resnet20', '--repo-id',
                    'someone/x', '--results', str(unlabelled), '--out', str(tmp_path / 'o')], capsys)
    assert_one_line_error(proc, 'pass --ema or --no-ema')
    # rows that say so: the better validated set is chosen.
    rows = [dict(row, use_ema=True, top1=10.0), dict(row, use_ema=False, top1=20.0)]
    results = tmp_path / 'both.json'
    results.write_text(json.dumps(rows))
    proc = publish(['--checkpoint', str(variant_run['checkpoint']), '--model', 'crelu_resnet20', '--repo-id',
                    'someone/x', '--results', str(results), '--out', str(tmp_path / 'o')], capsys)
    assert proc.returncode == 0, proc.stderr
    with safetensors.safe_open(str(tmp_path / 'o' / 'model.safetensors'), 'pt') as f:
        assert f.metadata()['weights'] == 'model'
    assert ModelCard.load(tmp_path / 'o' / 'README.md').data.eval_results[0].metric_value == 20.0


def test_republishing_gives_identical_files(tag_folder: Path, tiny_run, tmp_path: Path, capsys):
    out = tmp_path / 'again'
    proc = publish(['--checkpoint', str(tiny_run['checkpoint']), '--model', 'crelu_resnet20', '--tag', 'digits',
                    '--results', str(tiny_run['results']), '--out', str(out)], capsys)
    assert proc.returncode == 0, proc.stderr
    assert snapshot(out) == snapshot(tag_folder)
    # publishing over an existing publication replaces it whole
    proc = publish(['--checkpoint', str(tiny_run['checkpoint']), '--model', 'crelu_resnet20', '--tag', 'digits',
                    '--results', str(tiny_run['results']), '--out', str(out)], capsys)
    assert proc.returncode == 0 and snapshot(out) == snapshot(tag_folder)
    assert sorted(p.name for p in tmp_path.iterdir()) == ['again']


def test_hparams_paths_are_made_portable_and_an_earlier_checkpoint_is_labelled(tiny_run, tmp_path: Path, capsys):
    """An args.yaml that names the training machine's paths is published with the recipe relative to the repository
    and the output folder left out; a checkpoint before the run's last epoch, measured on the run's validation
    split, is labelled as possibly chosen on it."""
    args = yaml.safe_load(tiny_run['args'].read_text())
    args.update(config=str(REPO / 'train' / 'recipes' / 'digits.yaml'), output=str(tmp_path / 'runs'), epochs=3)
    hparams = tmp_path / 'args.yaml'
    hparams.write_text(yaml.safe_dump(args, default_flow_style=False))
    out = tmp_path / 'pub'
    proc = publish(['--checkpoint', str(tiny_run['checkpoint']), '--model', 'crelu_resnet20', '--tag', 'digits',
                    '--results', str(tiny_run['results']), '--hparams', str(hparams), '--out', str(out)], capsys)
    assert proc.returncode == 0, proc.stderr
    published = yaml.safe_load((out / 'train_hparams.yaml').read_text())
    assert published == dict(args, config='train/recipes/digits.yaml', output=None)
    for name in ('README.md', 'train_hparams.yaml', 'config.json'):
        assert_no_machine_paths((out / name).read_text(), REPO, tmp_path)
    text = ModelCard.load(out / 'README.md').text
    assert 'epoch 1 of 3, not the final one' in text and 'Chosen on the split it is measured on' in text


def test_regenerating_a_folder_from_itself_gives_identical_files(tag_folder: Path, tiny_run, tmp_path: Path, capsys):
    copy = tmp_path / 'crelu_resnet20.digits'
    shutil.copytree(tag_folder, copy)
    proc = publish(['--regenerate', '--out', str(copy), '--results', str(tiny_run['results'])], capsys)
    assert proc.returncode == 0, proc.stderr
    assert 'tensors unchanged' in proc.stdout
    assert snapshot(copy) == snapshot(tag_folder)  # no checkpoint needed, nothing changes when nothing changed
    # without these weights' results (the registry's file measured another checkpoint), nothing is written
    (copy / 'README.md').write_text('stale card')
    before = snapshot(copy)
    assert_one_line_error(publish(['--regenerate', '--out', str(copy)], capsys), 'not this one')
    assert snapshot(copy) == before and sorted(p.name for p in tmp_path.iterdir()) == ['crelu_resnet20.digits']


# Bad input ----------------------------------------------------------------------------------------------------

def _bad_inputs(tiny_run, tmp: Path) -> Dict[str, tuple]:
    ckpt, results = tiny_run['checkpoint'], tiny_run['results']
    truncated = tmp / 'truncated.pth.tar'
    truncated.write_bytes(ckpt.read_bytes()[:5000])
    foreign = tmp / 'resnet18.pth'
    torch.save(timm.create_model('resnet18', num_classes=10).state_dict(), foreign)
    row = json.loads(results.read_text())
    other_model = tmp / 'other_model.json'
    other_model.write_text(json.dumps(dict(row, model='crelu_resnet32')))
    other_ckpt = tmp / 'other_ckpt.json'
    other_ckpt.write_text(json.dumps(dict(row, checkpoint_sha256='0' * 64)))
    base = ['--model', 'crelu_resnet20', '--repo-id', 'someone/x']
    return {
        'missing': ([*base, '--checkpoint', str(tmp / 'nope.pth.tar')], ('does not exist',)),
        'truncated': ([*base, '--checkpoint', str(truncated)], ('truncated',)),
        'foreign': ([*base, '--checkpoint', str(foreign)], ('does not fit model', 'missing keys')),
        'arch_mismatch': (['--model', 'crelu_resnet32', '--repo-id', 'someone/x', '--checkpoint', str(ckpt)],
                          ("trained as 'crelu_resnet20'", '--model crelu_resnet20')),
        'unknown_model': (['--model', 'crelu_resnet21', '--repo-id', 'someone/x', '--checkpoint', str(ckpt)],
                          ("unknown model 'crelu_resnet21'",)),
        'results_other_model': ([*base, '--checkpoint', str(ckpt), '--results', str(other_model)],
                                ('crelu_resnet32', "not 'crelu_resnet20'")),
        'results_other_checkpoint': ([*base, '--checkpoint', str(ckpt), '--results', str(other_ckpt)],
                                     ('not this one',)),
        'timm_arch_as_tag': (['--model', 'resnet18.digits', '--checkpoint', str(foreign), '--results',
                              str(results)], ('architecture timm owns', 'hf-hub:')),
        'bad_repo_id': (['--model', 'crelu_resnet20', '--repo-id', 'no-owner', '--checkpoint', str(ckpt)],
                        ('not a Hub repo id',)),
    }


@pytest.mark.parametrize('case', ['missing', 'truncated', 'foreign', 'arch_mismatch', 'unknown_model',
                                  'results_other_model', 'results_other_checkpoint', 'timm_arch_as_tag',
                                  'bad_repo_id'])
def test_bad_input_is_one_line_and_writes_nothing(case: str, tiny_run, tag_folder: Path, tmp_path: Path, capsys):
    args, phrases = _bad_inputs(tiny_run, tmp_path)[case]
    fresh = tmp_path / 'fresh' / 'out'
    assert_one_line_error(publish([*args, '--out', str(fresh)], capsys), *phrases)
    assert not fresh.parent.exists()
    # an existing publication is left as it was
    existing = tmp_path / 'existing'
    shutil.copytree(tag_folder, existing)
    before = snapshot(existing)
    assert_one_line_error(publish([*args, '--out', str(existing)], capsys), *phrases)
    assert snapshot(existing) == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith('.publish-')]


def test_out_dir_with_other_files_is_refused(tiny_run, tmp_path: Path, capsys):
    out = tmp_path / 'repo'
    out.mkdir()
    (out / 'notes.txt').write_text('mine')
    proc = publish(['--checkpoint', str(tiny_run['checkpoint']), '--model', 'crelu_resnet20', '--repo-id',
                    'someone/x', '--out', str(out)], capsys)
    assert_one_line_error(proc, 'notes.txt', 'new or empty directory')
    assert os.listdir(out) == ['notes.txt']


# Upload -------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize('env', [dict(HF_HUB_OFFLINE='1'),
                                 dict(HF_ENDPOINT=UNREACHABLE, HF_TOKEN='hf_notARealTokenButSecret123')],
                         ids=['offline', 'unreachable'])
def test_failed_upload_is_one_line_keeps_dir_and_can_be_retried(env, tag_folder: Path, tiny_run, tmp_path: Path,
                                                                 dropping_hub):
    env = hub_env(env, dropping_hub)
    out = tmp_path / 'up'
    proc = run([str(PUBLISH), '--checkpoint', str(tiny_run['checkpoint']), '--model', 'crelu_resnet20', '--tag',
                'digits', '--results', str(tiny_run['results']), '--out', str(out), '--push'], cwd=tmp_path,
               HF_HOME=str(tmp_path / 'hf-home'), **env)
    line = assert_one_line_error(proc, f'upload to {TAG_REPO} failed', 'is intact', '--push')
    assert 'hf_notARealTokenButSecret123' not in proc.stdout + proc.stderr
    assert snapshot(out) == snapshot(tag_folder)  # the folder is complete and unchanged
    assert not [p for p in tmp_path.iterdir() if p.name.startswith('.publish-')]
    # the retry the message names: upload the folder alone
    retry = line.split('retry with `')[1].rstrip('`')
    assert retry.startswith('python hub/publish.py --out ')
    proc = run([str(PUBLISH), *retry.split()[2:]], cwd=tmp_path, HF_HOME=str(tmp_path / 'hf-home'), **env)
    assert_one_line_error(proc, f'upload to {TAG_REPO} failed')
    assert 'hf_notARealTokenButSecret123' not in proc.stdout + proc.stderr
    assert snapshot(out) == snapshot(tag_folder)


def test_push_of_an_incomplete_folder_is_refused(tmp_path: Path, capsys):
    (tmp_path / 'half').mkdir()
    (tmp_path / 'half' / 'config.json').write_text('{}')
    proc = publish(['--out', str(tmp_path / 'half'), '--repo-id', 'someone/x', '--push'], capsys)
    assert_one_line_error(proc, 'not a complete publication', 'model.safetensors')


# The registry and the committed publication ------------------------------------------------------------------

def test_registry_entries_are_registered_tags_of_names_that_fix_the_architecture():
    assert PUBLISHED
    for entry in PUBLISHED:
        assert entry.name in timm.list_pretrained(f'{entry.model}*')
        cfg = timm.models.get_pretrained_cfg(entry.name)
        assert cfg.hf_hub_id == entry.hub_id == f'timm-nf/{entry.name}'
        row = entry_results(entry)  # metrics come from the committed results file, which matches the entry
        assert architecture_differences(entry.model, row['model_args']) == []
        assert (REPO_ROOT / entry.recipe).is_file()


@pytest.mark.parametrize('entry', PUBLISHED, ids=[e.name for e in PUBLISHED])
def test_committed_publication_matches_registry_and_results(entry):
    folder = REPO / entry.published
    row = entry_results(entry)
    config = json.loads((folder / 'config.json').read_text())
    pcfg = config['pretrained_cfg']
    assert config['architecture'] == entry.model and config['num_classes'] == entry.num_classes
    assert (pcfg['input_size'], pcfg['crop_pct'], pcfg['interpolation'], pcfg['mean'], pcfg['std']) == (
        list(entry.input_size), entry.crop_pct, entry.interpolation, list(entry.mean), list(entry.std))
    # Every tag's weights are in the repository: until a push, it is their only durable copy.
    weights = folder / 'model.safetensors'
    assert weights.is_file(), f'{entry.name}: no {weights}'
    assert weights.stat().st_size <= MAX_WEIGHTS_IN_GIT
    with safetensors.safe_open(str(weights), 'pt') as f:
        assert f.metadata()['checkpoint_sha256'] == row['checkpoint_sha256']
    card = ModelCard.load(folder / 'README.md')
    metrics = {r.metric_type: r.metric_value for r in card.data.eval_results}
    assert metrics == {'accuracy': row['top1'], 'top_5_accuracy': row['top5']}
    hparams = yaml.safe_load((folder / 'train_hparams.yaml').read_text())
    assert hparams['model'] == entry.model and hparams['dataset'] == entry.dataset


@pytest.mark.parametrize('entry', PUBLISHED, ids=[e.name for e in PUBLISHED])
def test_committed_card_says_how_to_install_where_the_weights_are_and_what_each_number_is(entry):
    text = ModelCard.load(REPO / entry.published / 'README.md').text
    row = entry_results(entry)
    for phrase in ('clone the timm-nf repository', 'pip install .', f'`{entry.published}/`',
                   f"timm.create_model('local-dir:{entry.published}', pretrained=True)",
                   'python hub/publish.py --all --push',
                   f"| top-1 accuracy | {row['top1']:.2f}% | {entry.dataset} | {row['split']} | {row['num_images']} |"):
        assert phrase in text, phrase
    seeds = study_seeds(entry)
    if seeds is None:
        assert 'Nothing was chosen on this split' in text
    else:
        median = 'diverged' if seeds.median is None else f'{seeds.median:.2f}%'
        assert f'**{median}**' in text and seeds.split == row['split'] == entry.metrics_split
        if seeds.split == 'test':  # chosen on validation: nothing on the images of the numbers
            assert 'Nothing was chosen on the test split' in text and f'These weights are {entry.selection}' in text
            assert f"| {row['num_images']} | nothing: the seed was chosen on validation |" in text
            assert f'--pretrained --dataset {entry.dataset} --split test`' in text
        else:
            assert 'Selected on the split it is measured on' in text
            assert f"| {row['num_images']} | {entry.selection} |" in text  # beside the number
        # the published seed is the study's best, and its final top-1 on that split is the card's number
        assert dict(seeds.top1)[seeds.chosen] == pytest.approx(row['top1'], abs=0.01)


DIGITS_TAGS = [e for e in PUBLISHED if e.dataset == 'digits']


@pytest.fixture(scope='module')
def committed_weights_validated(tmp_path_factory) -> Tuple[Dict[str, dict], str]:
    """Every digits tag, loaded offline from a Hub cache of the committed folders, validated by one train/validate.py
    process given the file of their names (each model validated as alone: validate.py's list mode calls the same
    validate_one per name): one interpreter start instead of one per tag (about 5 s each)."""
    def validate_all(tmp: Path) -> Tuple[Dict[str, dict], str]:
        cache = tmp / 'hf-cache'
        for entry in DIGITS_TAGS:
            install_in_hf_cache(str(REPO / entry.published), entry.hub_id, str(cache))
        names, out = tmp / 'tags.txt', tmp / 'r.json'
        names.write_text(''.join(f'{e.name}\n' for e in DIGITS_TAGS))
        proc = run([str(VALIDATE), '--model', str(names), '--pretrained', '--dataset', 'digits', '--workers', '0',
                    '--device', 'cpu', '--results-file', str(out), '--results-format', 'json'], cwd=tmp, timeout=600,
                   HF_HUB_OFFLINE='1', HF_HUB_CACHE=str(cache), HF_HOME=str(cache))
        assert proc.returncode == 0, proc.stderr[-3000:]
        return {row['model']: row for row in json.loads(out.read_text())}, proc.stderr
    return shared_by_workers(tmp_path_factory, 'committed_weights', validate_all)


@pytest.mark.parametrize('entry', DIGITS_TAGS, ids=lambda e: e.name)
def test_committed_weights_reproduce_their_results_offline(entry, committed_weights_validated):
    """The tag, loaded offline from a Hub cache of the committed folder, validates to the committed top-1."""
    rows, log = committed_weights_validated
    assert entry.name in rows, log[-3000:]  # list mode logs a model that failed and goes on with the others
    measured, committed = rows[entry.name], entry_results(entry)
    assert (measured['top1'], measured['top5'], measured['num_images']) == (
        committed['top1'], committed['top5'], committed['num_images'])


def test_committed_folders_are_exactly_the_registered_tags():
    folders = sorted(p.name for p in (REPO / 'hub' / 'published').iterdir() if p.is_dir())
    assert folders == sorted(e.name for e in PUBLISHED)
    ignored = subprocess.run(['git', 'check-ignore', '--no-index', *[str(REPO / e.published / 'model.safetensors')
                                                                   for e in PUBLISHED]],
                             cwd=REPO, capture_output=True, text=True)
    assert ignored.stdout == '', f'weights git would not commit: {ignored.stdout}'


# Architectures and tags in timm's registry --------------------------------------------------------------------

OURS = [name for family in FAMILIES for name in our_models(family)]


@pytest.mark.parametrize('name', OURS)
def test_bare_names_are_the_architectures_without_weights(name):
    model = timm.create_model(name, device='meta')
    cfg = model.pretrained_cfg
    assert not cfg.get('tag') and not cfg.get('hf_hub_id'), cfg
    if name.startswith('nf_regnet'):
        # the paper's training size (Brock et al. Table 7), which timm's weightless NF-RegNet cfgs also use; timm's
        # nf_regnet_b1 defaults to its ra2_in1k weights, trained at 256 px
        from timm_nf.models.nf_regnet import NF_REGNET_LAYOUTS
        px = NF_REGNET_LAYOUTS[name.split('_')[2]][2]
        natural = (3, px, px)
        timm_cfg = timm.get_pretrained_cfg(re.sub('_c?relu$', '', name))
        assert timm_cfg.hf_hub_id or tuple(timm_cfg.input_size) == natural
    else:
        natural = (3, 32, 32) if model.cfg.stem == 'cifar' else (3, 224, 224)
    assert tuple(cfg['input_size']) == tuple(natural)
    assert name not in timm.list_pretrained()


def test_cifar_names_default_to_32px_and_tags_carry_their_own_size():
    for name in ('crelu_resnet56', 'crelu_resnet20'):
        assert timm.create_model(name, device='meta').pretrained_cfg['input_size'] == (3, 32, 32)
    tag = timm.models.get_pretrained_cfg('crelu_resnet56_relu.digits')
    assert (tag.input_size, tag.pool_size, tag.num_classes) == ((3, 16, 16), (4, 4), 10)
    out = timm.create_model('crelu_resnet56_relu.digits', device='meta').forward_features(
        torch.empty(1, 3, 16, 16, device='meta'))
    assert tuple(out.shape[-2:]) == tag.pool_size
    with pytest.raises(RuntimeError, match='No pretrained weights exist for crelu_resnet56: .*crelu_resnet56.digits'):
        timm.create_model('crelu_resnet56', pretrained=True)


def test_bare_name_with_pretrained_names_the_tags_that_have_weights(capsys):
    with pytest.raises(NoPretrainedWeightsError) as info:
        timm.create_model('crelu_resnet20', pretrained=True)
    message = str(info.value)
    assert isinstance(info.value, RuntimeError) and '\n' not in message  # timm's exception type, one line
    for phrase in ('crelu_resnet20.digits', "timm.create_model('local-dir:hub/published/crelu_resnet20.digits', "
                   "pretrained=True)", 'timm-nf/crelu_resnet20.digits'):
        assert phrase in message, message
    # an architecture without published weights keeps timm's own error; weights given another way still load
    with pytest.raises(RuntimeError, match='No pretrained weights exist for crelu_resnet32') as info:
        timm.create_model('crelu_resnet32', pretrained=True)
    assert not isinstance(info.value, NoPretrainedWeightsError)
    weights = str(REPO / 'hub' / 'published' / 'crelu_resnet20.digits' / 'model.safetensors')
    timm.create_model('crelu_resnet20', pretrained=True, pretrained_cfg_overlay=dict(file=weights))
    # the scripts print the same one line
    proc = call_main(VALIDATE, ['--model', 'crelu_resnet20', '--pretrained', '--dataset', 'digits', '--workers',
                                '0'], capsys)
    assert_one_line_error(proc, 'No pretrained weights exist for crelu_resnet20', 'crelu_resnet20.digits',
                          'local-dir:hub/published/crelu_resnet20.digits')


@pytest.mark.parametrize('env', [dict(HF_HUB_OFFLINE='1'), dict(HF_ENDPOINT=UNREACHABLE)],
                         ids=['offline', 'unreachable'])
def test_unreachable_tag_is_one_line_naming_tag_repo_and_local_folder(env, tmp_path: Path, dropping_hub):
    env = dict(hub_env(env, dropping_hub), HF_HUB_CACHE=str(tmp_path / 'empty'), HF_HOME=str(tmp_path / 'h'))
    entry = find_published('crelu_resnet56_relu', 'digits')
    code = (f"import timm, timm_nf\ntry:\n    timm.create_model('{entry.name}', pretrained=True)\n"
            "except timm_nf.pretrained.WeightsUnavailableError as e:\n    print('caught', e)\n")
    validate = [str(VALIDATE), '--model', entry.name, '--pretrained', '--dataset', 'digits', '--workers', '0']
    script, api = run_together(tmp_path, (validate, env), (['-c', code], env))
    # the folder relative to a clone's root: the installed package cannot know where a clone is
    assert_one_line_error(script, entry.name, entry.hub_id, f"'local-dir:{entry.published}'")
    # the same through the Python API, for each way the Hub is out of reach (a dropped connection is the HTTP
    # client's transport error, not an OSError)
    assert api.stdout.startswith('caught the weights of crelu_resnet56_relu.digits'), api.stdout + api.stderr


def _folder_lines(stdout: str) -> Dict[str, str]:
    return {e.name: next(l for l in stdout.splitlines() if l.startswith(str(REPO / e.published) + ' '))
            for e in PUBLISHED}


@pytest.mark.parametrize('env', [dict(HF_HUB_OFFLINE='1'), dict(HF_ENDPOINT=UNREACHABLE)],
                         ids=['offline', 'unreachable'])
def test_publish_all_dry_run_lists_every_folder_and_says_when_the_hub_cannot_be_asked(env, tmp_path: Path,
                                                                                    dropping_hub):
    env = hub_env(env, dropping_hub)
    proc = run([str(PUBLISH), '--all'], cwd=tmp_path, timeout=60, HF_HOME=str(tmp_path / 'hf-home'), **env)
    assert proc.returncode == 0, proc.stderr
    for entry in PUBLISHED:
        line = _folder_lines(proc.stdout)[entry.name]
        assert f'-> {entry.hub_id}:' in line and 'model.safetensors' in line and 'MB' in line
    could_not = [l for l in proc.stdout.splitlines() if l.startswith('Hub: could not ask')]
    assert len(could_not) == 1 and 'local-dir:' in could_not[0], proc.stdout
    assert ('HF_HUB_OFFLINE' if 'HF_HUB_OFFLINE' in env else 'onnect') in could_not[0]
    assert f'dry run: {len(PUBLISHED)} folders' in proc.stdout


class _FakeHub(http.server.BaseHTTPRequestHandler):
    """A Hub API on loopback that knows one model repo and answers 404 RepoNotFound for every other."""
    known = 'timm-nf/crelu_resnet20.digits'

    def do_GET(self):  # noqa: N802 (http.server's name)
        repo = self.path.split('?')[0].removeprefix('/api/models/').rstrip('/')
        if repo == self.known:
            body, status, headers = json.dumps({'id': repo, 'sha': '0' * 40}).encode(), 200, {}
        else:
            body, status, headers = b'{"error": "Repository not found"}', 404, {'X-Error-Code': 'RepoNotFound'}
        self.send_response(status)
        for key, value in dict(headers, **{'Content-Type': 'application/json'}).items():
            self.send_header(key, value)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_publish_all_dry_run_names_the_repos_the_hub_lacks(tmp_path: Path):
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), _FakeHub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        proc = run([str(PUBLISH), '--all'], cwd=tmp_path, timeout=60, HF_HOME=str(tmp_path / 'hf-home'),
                   HF_ENDPOINT=f'http://127.0.0.1:{server.server_address[1]}')
    finally:
        server.shutdown()
        server.server_close()
    assert proc.returncode == 0, proc.stderr
    lines = _folder_lines(proc.stdout)
    for entry in PUBLISHED:
        on_hub = entry.hub_id == _FakeHub.known
        assert ('(on the Hub):' if on_hub else '(not on the Hub yet):') in lines[entry.name], lines[entry.name]
    summary = next(l for l in proc.stdout.splitlines() if l.startswith('Hub: '))
    missing = sorted(e.hub_id for e in PUBLISHED if e.hub_id != _FakeHub.known)
    assert summary.startswith(f'Hub: {len(missing)} of {len(PUBLISHED)} repos not on the Hub yet: ')
    assert sorted(summary.split(': ', 2)[2].split(', ')) == missing


def test_publish_all_push_without_token_is_one_line_and_uploads_nothing(tmp_path: Path, dropping_hub):
    before = {e.name: snapshot(REPO / e.published) for e in PUBLISHED}
    home = dict(HF_HOME=str(tmp_path / 'hf-home'))
    push = [str(PUBLISH), '--all', '--push']
    no_token, proc = run_together(
        tmp_path, (push, home), (push, dict(home, HF_ENDPOINT=dropping_hub, HF_TOKEN='hf_notARealTokenButSecret123')))
    assert_one_line_error(no_token, 'no Hugging Face token', 'nothing was uploaded')
    assert_one_line_error(proc, 'cannot compare', 'retry with')
    assert 'hf_notARealTokenButSecret123' not in proc.stdout + proc.stderr
    assert {e.name: snapshot(REPO / e.published) for e in PUBLISHED} == before
