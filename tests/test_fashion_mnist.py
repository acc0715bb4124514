"""Fashion-MNIST from IDX files: the reader, the fixed stratified splits, every one-line error, and a real
`train/train.py` + `validate.py --split test` run.

Most tests use tiny IDX files they write themselves (12 training / 3 test images per class, gzipped and raw), so
the suite passes on a machine without Debian's `dataset-fashion-mnist`. The tests of the real files run when the
package is installed, skip otherwise, and fail instead of skipping under CI (`CI=true`; `.ci/run` installs it).
"""
import gzip
import json
import os
from pathlib import Path
from typing import Dict, List

import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from script_helpers import REPO, assert_one_line_error, call_main, load_script, run_script

from timm.data import create_loader

import timm_nf.data.fashion_mnist as fashion_mnist_module
from timm_nf.data import (
    FASHION_MNIST_DEBIAN_DIR, FashionMnistDataset, create_dataset, dataset_num_classes,
    stratified_order,
)

TRAIN = REPO / 'train' / 'train.py'
VALIDATE = REPO / 'train' / 'validate.py'
RECIPE = REPO / 'train' / 'recipes' / 'fashion_mnist.yaml'
FILES = ('train-images-idx3-ubyte', 'train-labels-idx1-ubyte', 't10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte')
TRAIN_PER_CLASS, TEST_PER_CLASS = 12, 3


def idx_bytes(array: np.ndarray) -> bytes:
    """An unsigned-byte IDX file: magic 0x0000080N (N dimensions), big-endian dimensions, the data."""
    header = (0x0800 + array.ndim).to_bytes(4, 'big') + b''.join(d.to_bytes(4, 'big') for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def make_split(per_class: int, seed: int):
    """Random 28x28 images and shuffled labels, `per_class` of each of 10 classes."""
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.repeat(np.arange(10), per_class)).astype(np.uint8)
    images = rng.integers(0, 256, size=(len(labels), 28, 28), dtype=np.uint8)
    return images, labels


def write_files(folder: Path, arrays: Dict[str, np.ndarray], gz: bool) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, array in arrays.items():
        data = idx_bytes(array)
        if gz:
            (folder / (name + '.gz')).write_bytes(gzip.compress(data))
        else:
            (folder / name).write_bytes(data)
    return folder


@pytest.fixture(scope='module')
def arrays() -> Dict[str, np.ndarray]:
    train_images, train_labels = make_split(TRAIN_PER_CLASS, seed=1)
    test_images, test_labels = make_split(TEST_PER_CLASS, seed=2)
    return dict(zip(FILES, (train_images, train_labels, test_images, test_labels)))


@pytest.fixture(scope='module')
def gz_dir(tmp_path_factory, arrays) -> Path:
    return write_files(tmp_path_factory.mktemp('gz'), arrays, gz=True)


@pytest.fixture(scope='module')
def raw_dir(tmp_path_factory, arrays) -> Path:
    return write_files(tmp_path_factory.mktemp('raw'), arrays, gz=False)


def test_reads_gzipped_and_raw_files_alike(gz_dir: Path, raw_dir: Path, arrays):
    for split, prefix in (('train', 'train'), ('validation', 'train'), ('test', 't10k')):
        gz, raw = FashionMnistDataset(split, root=str(gz_dir)), FashionMnistDataset(split, root=str(raw_dir))
        assert np.array_equal(gz.indices, raw.indices) and np.array_equal(gz.images, raw.images)
        # Every item is the file's image at its official index, replicated to 3 channels, with its label.
        images, labels = arrays[f'{prefix}-images-idx3-ubyte'], arrays[f'{prefix}-labels-idx1-ubyte']
        for i in range(len(gz)):
            img, target = gz[i]
            assert isinstance(img, Image.Image) and img.mode == 'RGB' and img.size == (28, 28)
            pixels = np.asarray(img)
            assert all(np.array_equal(pixels[..., c], images[gz.indices[i]]) for c in range(3))
            assert target == labels[gz.indices[i]]
        assert gz.filenames()[0] == f'fashion_mnist/{prefix}/{gz.indices[0]}'


def test_fixed_stratified_disjoint_splits(gz_dir: Path):
    train, val = FashionMnistDataset('train', root=str(gz_dir)), FashionMnistDataset('val', root=str(gz_dir))
    test = FashionMnistDataset('test', root=str(gz_dir))
    # 1/12 of the training file is validation (5,000 of 60,000 for the real one), one image per class here.
    assert (len(train), len(val), len(test)) == (110, 10, 30)
    assert np.bincount(val.targets).tolist() == [1] * 10
    assert np.bincount(train.targets).tolist() == [11] * 10
    assert np.bincount(test.targets).tolist() == [3] * 10
    assert set(train.indices).isdisjoint(val.indices)
    assert sorted([*train.indices, *val.indices]) == list(range(120))
    assert sorted(test.indices) == list(range(30))
    # Fixed: the same images in the same order every time.
    again = FashionMnistDataset('validation', root=str(gz_dir))
    assert np.array_equal(again.indices, val.indices)
    assert dataset_num_classes(train) == 10 and val.split == 'validation'
    # A training subset is stratified, and a smaller one is part of a larger one.
    small = FashionMnistDataset('train', root=str(gz_dir), num_samples=20)
    large = FashionMnistDataset('train', root=str(gz_dir), num_samples=50)
    assert np.bincount(small.targets).tolist() == [2] * 10 and np.bincount(large.targets).tolist() == [5] * 10
    assert np.array_equal(large.indices[:20], small.indices)
    # Another seed gives another fixed split.
    assert not np.array_equal(FashionMnistDataset('validation', root=str(gz_dir), seed=1).indices, val.indices)


def test_stratified_order_prefixes_hold_each_class_in_proportion():
    rng = np.random.default_rng(0)
    targets = rng.permutation(np.repeat(np.arange(4), [50, 30, 15, 5]))
    order = stratified_order(targets, seed=3)
    assert sorted(order) == list(range(100))
    counts = np.cumsum(np.eye(4)[targets[order]], axis=0)
    share = np.arange(1, 101)[:, None] * np.array([50, 30, 15, 5]) / 100
    assert np.abs(counts - share).max() <= 1.05
    assert np.array_equal(stratified_order(targets, seed=3), order)


def test_three_channel_batches_through_timm_loader(gz_dir: Path):
    dataset = create_dataset('fashion_mnist', root=str(gz_dir), split='validation')
    loader = create_loader(dataset, input_size=(3, 28, 28), batch_size=10, crop_pct=1.0, num_workers=0,
                           mean=(0.3,) * 3, std=(0.4,) * 3, device=torch.device('cpu'), use_prefetcher=True)
    images, targets = next(iter(loader))
    assert images.shape == (10, 3, 28, 28) and images.dtype == torch.float32 and targets.shape == (10,)
    assert torch.equal(images[:, 0], images[:, 1]) and torch.equal(images[:, 1], images[:, 2])


def _truncate(path: Path, keep: int) -> None:
    path.write_bytes(path.read_bytes()[:keep])


def _corrupt(kind: str, folder: Path, arrays) -> None:
    """Damage the tiny raw files in `folder` the way `kind` says."""
    images = folder / 'train-images-idx3-ubyte'
    if kind == 'truncated':
        _truncate(images, 1000)
    elif kind == 'truncated header':
        _truncate(images, 10)
    elif kind == 'extra bytes':
        images.write_bytes(images.read_bytes() + b'\0')
    elif kind == 'labels as images':
        images.write_bytes((folder / 'train-labels-idx1-ubyte').read_bytes())
    elif kind == 'not idx':
        images.write_bytes(b'<html>not found</html>')
    elif kind == '32 px':
        images.write_bytes(idx_bytes(np.zeros((120, 32, 32), np.uint8)))
    elif kind == 'label count':
        (folder / 'train-labels-idx1-ubyte').write_bytes(idx_bytes(np.zeros(119, np.uint8)))
    elif kind == 'label range':
        (folder / 'train-labels-idx1-ubyte').write_bytes(idx_bytes(np.full(120, 10, np.uint8)))
    elif kind in ('truncated gz', 'corrupt gz'):
        images.unlink()
        data = gzip.compress(idx_bytes(arrays['train-images-idx3-ubyte']))
        data = data[:len(data) // 2] if kind == 'truncated gz' else data[:20] + bytes(len(data) - 20)
        (folder / 'train-images-idx3-ubyte.gz').write_bytes(data)


def _train_args(data_dir: Path, out: Path, *extra: str) -> List[str]:
    return ['--config', str(RECIPE), '--data-dir', str(data_dir), '--train-num-samples', '100', '-b', '50',
            '--epochs', '1', '--device', 'cpu', '--output', str(out), '--experiment', 'exp', *extra]


@pytest.mark.parametrize('kind, phrases', [
    ('truncated', ['train-images-idx3-ubyte is truncated', 'apt-get install --reinstall dataset-fashion-mnist']),
    ('truncated header', ['is truncated', 'shorter than its IDX header']),
    ('extra bytes', ['has extra bytes']),
    ('labels as images', ['is not an IDX image file', 'magic number 0x00000801', 'expected 0x00000803']),
    ('not idx', ['is not an IDX image file', 'replace it with the official file']),
    ('32 px', ['holds 32x32 images', '28x28']),
    ('label count', ['has 119 labels for the 120 images']),
    ('label range', ['has label 10', 'classes 0-9']),
    ('truncated gz', ['train-images-idx3-ubyte.gz is a truncated or corrupt gzip file']),
    ('corrupt gz', ['train-images-idx3-ubyte.gz is a truncated or corrupt gzip file']),
])
def test_bad_file_is_one_line_error(kind: str, phrases: List[str], tmp_path: Path, arrays, capsys):
    data_dir = write_files(tmp_path / 'data', arrays, gz=False)
    _corrupt(kind, data_dir, arrays)
    proc = call_main(TRAIN, _train_args(data_dir, tmp_path / 'out'), capsys)
    assert_one_line_error(proc, *phrases)
    assert not (tmp_path / 'out').exists()


@pytest.mark.parametrize('extra, phrases', [
    (['--dataset-download'], ['never downloaded', 'drop --dataset-download']),
    (['--val-split', 'test'], ["split 'test' is only reported", '--split test', 'use --val-split validation']),
    (['--train-split', 'test'], ["split 'test' is only reported", 'use --train-split train']),
    (['--dataset', 'torch/fashion_mnist'], ["timm's torch/fashion_mnist", 'use --dataset fashion_mnist']),
    (['--val-split', 'valid'], ["unknown split 'valid'", 'test, train, val, validation']),
    (['--train-num-samples', '111'], ['num_samples 111 does not fit', "split 'train' of 110 images"]),
])
def test_bad_flags_are_one_line_errors(extra: List[str], phrases: List[str], gz_dir: Path, tmp_path: Path, capsys):
    proc = call_main(TRAIN, _train_args(gz_dir, tmp_path / 'out', *extra), capsys)
    assert_one_line_error(proc, *phrases)
    assert not (tmp_path / 'out').exists()


def test_missing_files_are_one_line_errors(tmp_path: Path, monkeypatch, capsys):
    # Where the package would be, nothing: the error names the package to install.
    monkeypatch.setattr(fashion_mnist_module, 'FASHION_MNIST_DEBIAN_DIR', str(tmp_path / 'not-installed'))
    args = ['--config', str(RECIPE), '--epochs', '1', '--output', str(tmp_path / 'out')]
    proc = call_main(TRAIN, args, capsys)
    assert_one_line_error(proc, 'Fashion-MNIST is not installed', 'apt-get install dataset-fashion-mnist',
                          '--data-dir')
    proc = call_main(VALIDATE, ['--model', 'crelu_resnet20', '--dataset', 'fashion_mnist', '--split', 'test'], capsys)
    assert_one_line_error(proc, 'Fashion-MNIST is not installed', 'apt-get install dataset-fashion-mnist')
    proc = call_main(TRAIN, [*args, '--data-dir', str(tmp_path / 'nowhere')], capsys)
    assert_one_line_error(proc, "--data-dir '", "nowhere' does not exist")
    (tmp_path / 'empty').mkdir()
    proc = call_main(TRAIN, [*args, '--data-dir', str(tmp_path / 'empty')], capsys)
    assert_one_line_error(proc, 'has no train-images-idx3-ubyte or train-images-idx3-ubyte.gz')
    assert not (tmp_path / 'out').exists()


def test_validate_refuses_download(gz_dir: Path, capsys):
    proc = call_main(VALIDATE, ['--model', 'crelu_resnet20', '--dataset', 'fashion_mnist', '--data-dir', str(gz_dir),
                                '--split', 'test', '--dataset-download'], capsys)
    assert_one_line_error(proc, 'never downloaded')


def test_train_one_epoch_then_validate_on_test(gz_dir: Path, tmp_path: Path):
    """The recipe trains from the IDX files (no download) and validate.py reports on the test split, as the
    Fashion-MNIST study measures each run (`train/study.py`'s `measure_test`: the run's final weights, the files
    the run trained from, into `test.json`)."""
    proc = run_script(TRAIN, _train_args(gz_dir, tmp_path / 'out'), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-4000:]
    exp = tmp_path / 'out' / 'exp'
    log = (exp / 'train.log').read_text()
    assert '2 updates per epoch' in log  # 100 training images of the stratified subset, batch 50
    args = yaml.safe_load((exp / 'args.yaml').read_text())
    assert args['dataset'] == 'fashion_mnist' and args['img_size'] == 28 and args['crop_padding'] == 2
    study = load_script(REPO / 'train' / 'study.py')
    # --data-dir as the study passes it to train.py (after `--`): the test split must come from the same files
    study.measure_test(study.GROUPS['fashion_mnist'].parts[0][1], exp, 1, extra=['--epochs', '1', '--data-dir',
                                                                                str(gz_dir)])
    results = json.loads((exp / 'test.json').read_text())
    assert results['split'] == 'test' and results['dataset'] == 'fashion_mnist' and results['num_images'] == 30
    assert results['model'] == 'crelu_resnet20' and results['img_size'] == 28 and 0 <= results['top1'] <= 100
    assert not list(exp.glob('.test.json*'))  # written atomically


# The real files of Debian's dataset-fashion-mnist.

def real_files() -> Path:
    """The package's folder; skip without it, except under CI, which installs it and must test it."""
    folder = Path(FASHION_MNIST_DEBIAN_DIR)
    if all((folder / (name + '.gz')).is_file() for name in FILES):
        return folder
    message = f'Debian package dataset-fashion-mnist not installed ({folder}); apt-get install dataset-fashion-mnist'
    if os.environ.get('CI') == 'true':
        pytest.fail(message + ' (.ci/run installs it)')
    pytest.skip(message)


def test_real_files_counts_and_balance():
    folder = real_files()
    train, val, test = (FashionMnistDataset(split) for split in ('train', 'validation', 'test'))
    assert (len(train), len(val), len(test)) == (55000, 5000, 10000)
    assert np.bincount(train.targets).tolist() == [5500] * 10
    assert np.bincount(val.targets).tolist() == [500] * 10
    assert np.bincount(test.targets).tolist() == [1000] * 10
    assert set(train.indices).isdisjoint(val.indices) and len({*train.indices, *val.indices}) == 60000
    # The official files in the official order: their first labels (Ankle boot, T-shirt/top, ...).
    with gzip.open(folder / 'train-labels-idx1-ubyte.gz') as f:
        assert f.read(16)[8:] == bytes([9, 0, 0, 3, 0, 2, 7, 2])
    with gzip.open(folder / 't10k-labels-idx1-ubyte.gz') as f:
        assert f.read(16)[8:] == bytes([9, 2, 1, 1, 6, 1, 4, 6])
    assert test.images.shape == (10000, 28, 28)


def test_real_files_recipe_subset_and_its_mean_std():
    real_files()
    recipe = yaml.safe_load(RECIPE.read_text())
    subset = FashionMnistDataset('train', num_samples=recipe['train_num_samples'])
    assert len(subset) == 10000 and np.bincount(subset.targets).tolist() == [1000] * 10
    pixels = subset.images / 255.
    assert recipe['mean'] == [round(pixels.mean(), 4)] * 3 and recipe['std'] == [round(pixels.std(), 4)] * 3


def test_real_files_train_and_validate_test_split(tmp_path: Path, capsys, monkeypatch):
    """train.py on the package's files without --data-dir (nothing downloaded), validate.py on the test split (its
    main() in this process, run from the test's folder, where a download would land)."""
    real_files()
    proc = run_script(TRAIN, ['--config', str(RECIPE), '--train-num-samples', '100', '--val-num-samples', '50',
                              '-b', '50', '--epochs', '1', '--device', 'cpu', '--output', str(tmp_path / 'out'),
                              '--experiment', 'exp'], cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-4000:]
    results_file = tmp_path / 'test.json'
    monkeypatch.chdir(tmp_path)
    proc = call_main(VALIDATE, ['--checkpoint', str(tmp_path / 'out' / 'exp' / 'last.pth.tar'), '--dataset',
                                'fashion_mnist', '--split', 'test', '--num-samples', '500', '--workers', '0',
                                '--results-file', str(results_file), '--results-format', 'json'], capsys)
    assert proc.returncode == 0, proc.stderr[-4000:]
    results = json.loads(results_file.read_text())
    assert results['split'] == 'test' and results['num_images'] == 500
    assert sorted(p.name for p in tmp_path.iterdir()) == ['out', 'test.json']  # nothing else fetched or written
