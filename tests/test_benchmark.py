"""train/benchmark.py runs and reports (behaviour only: timings depend on the machine and are not asserted).

Its main() runs in the test's process (`call`), where nothing needs a fresh interpreter: the peak memory is measured
in subprocesses by the benchmark itself. One bad-variant run is a real process, for the exit status."""
import csv
import json
import statistics
import subprocess
import sys

from script_helpers import REPO, call_main

BENCHMARK = REPO / 'train' / 'benchmark.py'


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(BENCHMARK), *args], capture_output=True, text=True, cwd=REPO)


def call(capsys, *args: str) -> subprocess.CompletedProcess:
    return call_main(BENCHMARK, list(args), capsys)


def test_compare_writes_results_with_memory(tmp_path, capsys):
    out_file = tmp_path / 'bench.json'
    # --memory measures each model in a fresh process per round: two models at 16 px keep that to 8 processes
    res = call(capsys, '--bench', 'both', '--compare', 'nf_resnet20', 'nf_resnet20@fold', '--img-size', '16',
               '--num-warm-iter', '1', '--num-bench-iter', '1', '--rounds', '2', '--memory', '--threads', '1',
               '--results-file', str(out_file))
    assert res.returncode == 0, res.stderr
    rows = json.loads(out_file.read_text())
    assert [(r['model'], r['bench']) for r in rows] == [
        (m, b) for b in ('infer', 'train') for m in ('nf_resnet20', 'nf_resnet20@fold')]
    for r in rows:
        assert r['step_ms'] > 0 and r['samples_per_sec'] > 0 and r['peak_rss_mb'] > 0
        assert len(r['step_ms_all'].split()) == 2 and r['threads'] == 1 and r['img_size'] == 16
    assert 'vs first' in res.stdout
    assert 'peak RSS MB' in res.stdout and all(r['peak_cuda_mb'] is None for r in rows)  # host memory on CPU


def test_single_model_csv(tmp_path, capsys):
    out_file = tmp_path / 'bench.csv'
    res = call(capsys, '--model', 'cfg/nf_resnet50_timm', '--img-size', '32', '--num-warm-iter', '1',
               '--num-bench-iter', '1', '--rounds', '1', '--reparam', '--results-file', str(out_file))
    assert res.returncode == 0, res.stderr
    header, row = out_file.read_text().splitlines()[:2]
    assert header.startswith('model,bench,batch_size') and row.startswith('cfg/nf_resnet50_timm@fold,infer,1,32')


def test_bad_variant_is_a_clear_error(capsys):
    # @nocache named the eval-mode weight cache, removed: there is nothing left to switch off. The first is a real
    # process (its exit status), the second runs in this one.
    for variant, start in (('fast', run), ('nocache', lambda *a: call(capsys, *a))):
        res = start('--model', f'nf_resnet20@{variant}', '--rounds', '1')
        assert res.returncode == 2
        assert f'unknown variant @{variant}' in res.stderr and '@fold' in res.stderr


def test_peak_memory_is_per_process():
    # Each measurement is a fresh process whose own high-water mark is read: a big training step must show more
    # memory than a tiny inference, even when measured after it (a process-wide mark inherited or never reset
    # would report the same number for both).
    from timm_nf.benchmark import measure_peak_memory
    big = measure_peak_memory('crelu_resnet110', 'train', 64, 32, 'cpu', num_iter=1, threads=1)
    small = measure_peak_memory('nf_resnet20', 'infer', 1, 32, 'cpu', num_iter=1, threads=1)
    assert big > small + 100


def test_paired_ratios_are_per_round(tmp_path, capsys):
    out_file = tmp_path / 'bench.csv'
    res = call(capsys, '--compare', 'nf_resnet20', 'nf_resnet20@fold', '--num-warm-iter', '1', '--num-bench-iter',
               '1', '--rounds', '3', '--threads', '1', '--results-file', str(out_file))
    assert res.returncode == 0, res.stderr
    res = call(capsys, '--markdown', str(out_file), '--paired', 'nf_resnet20', 'nf_resnet20@fold', 'absent',
               'nf_resnet20')
    assert res.returncode == 0, res.stderr
    with open(out_file, newline='') as f:
        rounds = {r['model']: [float(t) for t in r['step_ms_all'].split()] for r in csv.DictReader(f)}
    ratios = sorted(a / b for a, b in zip(rounds['nf_resnet20'], rounds['nf_resnet20@fold']))
    lines = [line for line in res.stdout.splitlines() if line.startswith('- ')]
    assert lines == [f'- `nf_resnet20` / `nf_resnet20@fold` (infer): {ratios[1]:.3f} '
                     f'(quartiles {statistics.quantiles(ratios, n=4, method="inclusive")[0]:.2f}-'
                     f'{statistics.quantiles(ratios, n=4, method="inclusive")[2]:.2f}, 3 rounds)']
    res = call(capsys, '--markdown', str(out_file), '--paired', 'nf_resnet20')
    assert res.returncode == 2 and '--paired takes pairs' in res.stderr
