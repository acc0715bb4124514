#!/usr/bin/env python3
"""The small-scale reproduction of Shang, Chiu & Sohn (AAAI 2017), Table 2, on the embedded digits.

Trains every row of `timm_nf.paper.study_rows(depth)` (Table 2's ten rows plus the NormProp3 and NF-ResNet
extensions) for several seeds with `train/train.py` and one recipe (`train/recipes/study_digits.yaml`). The only
per-run change is the paper's rule for unstable models: a run that diverges at the base lr (0.025 at batch 32, the
paper's 0.1 at batch 128 by linear scaling) is rerun at half the lr, and again, until it trains (both runs are kept
and reported). A run diverges when its loss turns NaN / infinite (train.py exits with status 3) or its final
training loss is at chance level (within 5% of ln 10).

Run directories: `<runs>/<model>/seed<S>-lr<LR>/` (train.py's outputs plus `study.json`, the run's outcome, and
`console.log`). Every command can be stopped and re-run: finished runs are skipped, an interrupted one continues
from its last checkpoint (`--resume auto`).

At the paper's own depth (`run --depth 110`) the study trains the four rows of its Table 1 and Fig. 2: plain and
BatchNorm, with ReLU and with CReLU (`timm_nf.paper.deep_study_rows`).

Commands:
    # train the grid (2 workers, one core each), then aggregate and write docs/REPRODUCTION.md's tables
    python train/study.py run --runs output/study
    python train/study.py run --runs output/study --depth 110
    python train/study.py report --runs output/study
    # trained-model statistics (SPP, Delta, Table 1) of each row's best seed, and publishing of the best seeds
    python train/study.py analyze --runs output/study
    python train/study.py publish --runs output/study
"""
import argparse
import json
import os
import queue
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from timm_nf.paper import StudyRow, deep_study_rows, study_rows  # noqa: E402
from timm_nf.pretrained import find_published  # noqa: E402
from train.reproduction.study import (  # noqa: E402
    BASE_LR, MAX_HALVINGS, SEEDS, all_rows, claims_table, classify_run, collect_all, delta_lines, lr_name,
    read_outcome, read_summary, replace_blocks, results_table, run_dir, table1_lines,
)
from timm_nf.training.checkpoint import atomic_write_text  # noqa: E402

RECIPE = REPO / 'train' / 'recipes' / 'study_digits.yaml'
DATA = REPO / 'docs' / 'reproduction'  # committed copy of the runs' small files, the aggregate and the figures
DOC = REPO / 'docs' / 'REPRODUCTION.md'
TAG = 'digits'


def train_command(model: str, seed: int, lr: float, runs: Path, extra: Sequence[str] = ()) -> List[str]:
    return [
        sys.executable, str(REPO / 'train' / 'train.py'), '--config', str(RECIPE), '--model', model,
        '--seed', str(seed), '--lr', lr_name(lr), '--output', str(runs / model),
        '--experiment', f'seed{seed}-lr{lr_name(lr)}', '--resume', 'auto', *extra,
    ]


def run_one(model: str, seed: int, lr: float, runs: Path, core: Optional[int], threads: int,
            extra: Sequence[str] = ()) -> Dict:
    """Train one (model, seed, lr) run to its end, or continue it; returns and records its outcome."""
    out = run_dir(runs, model, seed, lr)
    done = read_outcome(out)
    if done is not None:
        # Re-derived from the run's files, so that every outcome follows the current rule.
        status, reason = classify_run(done['exit_status'], read_summary(out))
        if (status, reason) != (done['status'], done['reason']):
            done.update(status=status, reason=reason)
            atomic_write_text(str(out / 'study.json'), json.dumps(done, indent=2) + '\n')
        return done
    out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    pin = (lambda: os.sched_setaffinity(0, {core})) if core is not None and hasattr(os, 'sched_setaffinity') else None
    cmd = train_command(model, seed, lr, runs, extra)
    start = time.time()
    with open(out / 'console.log', 'a') as log:
        log.write('$ ' + ' '.join(cmd) + '\n')
        log.flush()
        status = subprocess.call(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, preexec_fn=pin, cwd=REPO)
    summary = read_summary(out)
    try:
        # Anything but a result (bad input, a crash) writes no study.json, so that a re-run retries the run.
        result, reason = classify_run(status, summary)
    except ValueError as e:
        raise RuntimeError(f'{model} seed {seed} lr {lr}: {e}; see {out}/console.log') from e
    outcome = {'model': model, 'seed': seed, 'lr': lr, 'exit_status': status, 'epochs': len(summary),
               'seconds_last_session': round(time.time() - start, 1), 'status': result, 'reason': reason}
    atomic_write_text(str(out / 'study.json'), json.dumps(outcome, indent=2) + '\n')
    return outcome


def run_row_seed(row: StudyRow, seed: int, runs: Path, core: Optional[int], threads: int,
                 extra: Sequence[str] = (), max_halvings: int = MAX_HALVINGS) -> List[Dict]:
    """One seed of a row under the lr-halving rule: the base lr, then half of it after each divergence."""
    outcomes = []
    for k in range(max_halvings + 1):
        outcome = run_one(row.model, seed, BASE_LR / 2 ** k, runs, core, threads, extra)
        outcomes.append(outcome)
        if outcome['status'] == 'trained':
            break
    return outcomes


def cost_hint(model: str) -> float:
    """Multiply-accumulates per image, so that the longest runs start first and the workers finish together."""
    from timm_nf.profile import model_stats
    return model_stats(model, img_size=_recipe_img_size()).gmacs


def cmd_run(args) -> int:
    grid = deep_study_rows() if args.depth == 110 else study_rows(args.depth)  # the paper's depth: four rows
    rows = [r for r in grid if not args.models or r.model in args.models]
    cost = {r.model: cost_hint(r.model) for r in rows}
    jobs = sorted(((r, s) for r in rows for s in args.seeds), key=lambda j: -cost[j[0].model])
    todo: 'queue.Queue' = queue.Queue()
    for job in jobs:
        todo.put(job)
    errors: List[str] = []
    lock = threading.Lock()

    def worker(core: Optional[int]) -> None:
        while not errors:
            try:
                row, seed = todo.get_nowait()
            except queue.Empty:
                return
            try:
                for o in run_row_seed(row, seed, args.runs, core, args.threads, args.train_args, args.max_halvings):
                    with lock:
                        print(f"{o['model']} seed {o['seed']} lr {o['lr']:g}: {o['status']} "
                              f"({o['epochs']} epochs) {o['reason']}", flush=True)
            except RuntimeError as e:
                with lock:
                    errors.append(str(e))

    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else []
    threads = [threading.Thread(target=worker, args=(cores[i % len(cores)] if cores else None,))
               for i in range(args.workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for e in errors:
        print(f'error: {e}', file=sys.stderr)
    return 1 if errors else 0


SMALL_FILES = ('summary.csv', 'study.json', 'args.yaml')


def _read_csv(path: Path) -> List[Dict[str, str]]:
    import csv
    with open(path, newline='') as f:
        return list(csv.DictReader(f))


def _recipe_img_size() -> int:
    import yaml
    return int(yaml.safe_load(RECIPE.read_text())['img_size'])


def best_checkpoint(runs: Path, row: Dict) -> Path:
    """Final weights of a row's best seed (`collect_study` row with a `best_seed`)."""
    return run_dir(runs, row['model'], row['best_seed']['seed'], row['best_seed']['lr']) / 'last.pth.tar'


def published_run(row: Dict) -> Optional[Path]:
    """The committed weights of a row's best seed, when its published folder holds exactly that run."""
    import yaml
    folder = REPO / 'hub' / 'published' / f"{row['model']}.{TAG}"
    try:
        hparams = yaml.safe_load((folder / 'train_hparams.yaml').read_text())
    except FileNotFoundError:
        return None
    same = (hparams.get('seed'), hparams.get('lr')) == (row['best_seed']['seed'], row['best_seed']['lr'])
    weights = folder / 'model.safetensors'
    return weights if same and weights.is_file() else None


def best_weights(runs: Path, row: Dict) -> Path:
    """A row's best-seed weights: the run's checkpoint, or (runs of an earlier session) the published copy of it."""
    ckpt = best_checkpoint(runs, row)
    if ckpt.is_file():
        return ckpt
    published = published_run(row)
    if published is None:
        raise SystemExit(f"error: {row['model']}: neither {ckpt} nor a published copy of seed "
                         f"{row['best_seed']['seed']} exists; rerun that seed (delete its study.json and run again)")
    return published


def validate_command(results_file: Path, *model_args: str, dataset: str = 'digits') -> List[str]:
    """train/validate.py on the validation split of `dataset`, writing its JSON results to `results_file`."""
    return [sys.executable, str(REPO / 'train' / 'validate.py'), *model_args, '--dataset', dataset, '-j', '0',
            '--results-file', str(results_file), '--results-format', 'json']


def copy_small_files(runs: Path, data_runs: Path) -> int:
    """Copy each finished run's summary.csv, study.json and args.yaml into the committed layout."""
    n = 0
    for outcome in sorted(runs.glob('*/seed*-lr*/study.json')):
        src = outcome.parent
        dst = data_runs / src.relative_to(runs)
        dst.mkdir(parents=True, exist_ok=True)
        for name in SMALL_FILES:
            if (src / name).exists():
                shutil.copyfile(src / name, dst / name)
        n += 1
    return n


def plot_curves(results: Dict, path: Path) -> None:
    """Median (over seeds) training loss and validation top-1 per epoch of every row, ReLU and CReLU apart."""
    import statistics
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(2, 2, figsize=(13, 8.5), sharex=True)
    norms = list(dict.fromkeys(r['norm'] for r in results['rows']))  # one color per normalization, both panels
    for col, act in enumerate(('ReLU', 'CReLU')):
        for r in (r for r in results['rows'] if r['act'] == act):
            seeds = [s for s in r['seeds'] if s['lr'] is not None]
            if not seeds:
                continue
            label = r['label'] + (' (ext.)' if r['extension'] else '') + \
                (f" lr {', '.join(lr_name(x) for x in r['lrs'])}" if r['lrs'] != [BASE_LR] else '')
            style = '--' if r['extension'] else '-'
            for row, key in enumerate(('train_loss_curve', 'val_top1_curve')):
                curves = [s[key] for s in seeds]
                n = min(len(c) for c in curves)
                med = [statistics.median(c[i] for c in curves) for i in range(n)]
                axes[row, col].plot(range(1, n + 1), med, style, label=label, color=f"C{norms.index(r['norm'])}")
        axes[0, col].set_yscale('log')
        depth = f"ResNet-{results['depth']}"
        axes[0, col].set_title(f'{depth}, {act} rows: training loss (median of seeds)')
        axes[1, col].set_title(f'{depth}, {act} rows: validation top-1 % (median of seeds)')
        axes[1, col].set_ylim(0, 100)
        axes[1, col].axhline(results['target_top1'], color='grey', lw=0.5)
        axes[1, col].set_xlabel('epoch')
        axes[0, col].legend(fontsize=7)
    fig.tight_layout()
    tmp = path.with_name('.tmp-' + path.name)
    fig.savefig(tmp, dpi=100, metadata={'Software': None})
    plt.close(fig)
    os.replace(tmp, path)


def render_blocks(results: Dict, data: Path) -> Dict[str, List[str]]:
    """The generated parts of docs/REPRODUCTION.md, by marker name."""
    link = f'{data.name}/runs/'
    blocks = {'results': results_table(results, link=link), 'claims': claims_table(results),
              'results110': results_table(results['deep'], link=link), 'claims110': claims_table(results['deep'])}
    if (data / 'analysis' / 'activations.csv').exists():
        blocks['table1'] = table1_lines(_read_csv(data / 'analysis' / 'activations.csv'), results)
    if (data / 'analysis' / 'delta.csv').exists():
        blocks['delta'] = delta_lines(_read_csv(data / 'analysis' / 'delta.csv'), results)
    return blocks


def cmd_report(args) -> int:
    data_runs = args.data / 'runs'
    if not args.check and args.runs.resolve() != data_runs.resolve():
        print(f'copied {copy_small_files(args.runs, data_runs)} runs into {data_runs}')
    results = collect_all(data_runs)
    blocks = render_blocks(results, args.data)
    results_file = args.data / 'results.json'
    doc_text = args.doc.read_text()
    try:
        new_doc = replace_blocks(doc_text, blocks, args.doc)
    except ValueError as e:
        raise SystemExit(f'error: {e}') from None
    if args.check:
        stale = []
        if not results_file.exists() or json.loads(results_file.read_text()) != json.loads(json.dumps(results)):
            stale.append(str(results_file))
        if new_doc != doc_text:
            stale.append(str(args.doc))
        if stale:
            print(f"error: {' and '.join(stale)} out of date with {data_runs}; run python train/study.py report",
                  file=sys.stderr)
            return 1
        print(f'{results_file} and {args.doc} match {data_runs}')
        return 0
    atomic_write_text(str(results_file), json.dumps(results, indent=1) + '\n')
    atomic_write_text(str(args.doc), new_doc)
    plot_curves(results, args.data / 'curves.png')
    plot_curves(results['deep'], args.data / 'curves110.png')
    print('\n'.join(blocks['results']))
    print(f"\nwrote {results_file}, the curves in {args.data} and the tables of {args.doc}"
          + ('' if results['complete'] else ' (the study is not complete)'))
    return 0


def cmd_analyze(args) -> int:
    """SPP, Delta and Table 1 statistics of each row's best seed, on digits validation images, in eval mode."""
    from timm_nf.analysis import (
        classifier_activations, create_analysis_model, dataset_batches, residual_differences, save_analysis,
        signal_propagation, trace_model,
    )
    # The committed record (after `report`) knows every row, also those trained in an earlier session whose
    # checkpoints are not in --runs; their weights come from the published copy.
    results = collect_all(args.data / 'runs')
    img = _recipe_img_size()
    rows: Dict[str, List[Dict]] = {'spp': [], 'delta': [], 'activations': []}
    for r in all_rows(results):
        if r['best_seed'] is None:
            print(f"{r['model']}: no trained seed, skipped")
            continue
        model = create_analysis_model(r['model'], checkpoint=str(best_weights(args.runs, r)))
        # All 360 validation images; BatchNorm with its running statistics (the trained model as it is used).
        batches = dataset_batches(model, 'digits', None, 'validation', (3, img, img), batch_size=90, num_batches=4)
        trace = trace_model(model, batches, batch_stats=False)
        common = dict(model=r['model'], input='digits', unit_gains=False)
        for kind, measure in (('spp', signal_propagation), ('delta', residual_differences),
                              ('activations', classifier_activations)):
            rows[kind] += [dict(common, **x) for x in measure(trace)]
        print(f"{r['model']}: seed {r['best_seed']['seed']}, {len(trace.blocks)} blocks traced")
    out = args.data / 'analysis'
    for kind, kind_rows in rows.items():
        paths = save_analysis(kind, kind_rows, str(out), title=f'{kind}: trained rows (best seed), digits')
        print('wrote ' + ', '.join(paths))
    return 0


def cmd_publish(args) -> int:
    """Validate each row's best seed and publish it as `<model>.digits` with hub/publish.py (--verify)."""
    results = collect_all(args.data / 'runs')  # the committed record, as in cmd_analyze
    img = _recipe_img_size()
    for r in all_rows(results):
        if args.models and r['model'] not in args.models:
            continue
        if r['best_seed'] is None:
            print(f"{r['model']}: no trained seed, not published")
            continue
        if find_published(r['model'], TAG) is None:  # the card's study text comes from the registry entry
            raise SystemExit(f"error: {r['model']}.{TAG} is not a registered tag, so its card would lack the study's "
                             'text; remove the row from UNTRAINED_STUDY_ROWS (timm_nf/pretrained.py), then publish')
        ckpt = best_weights(args.runs, r)  # the run's checkpoint, or a one-line error when no copy of it exists
        name = f"{r['model']}.{TAG}"
        if ckpt != best_checkpoint(args.runs, r):
            print(f"{name}: seed {r['best_seed']['seed']} is published already (its run is from an earlier session)")
            continue
        res = REPO / 'hub' / 'results' / f'{name}.json'
        for cmd in (
                validate_command(res, '--model', r['model'], '--checkpoint', str(ckpt), '--img-size', str(img)),
                [sys.executable, str(REPO / 'hub' / 'publish.py'), '--checkpoint', str(ckpt), '--model', r['model'],
                 '--tag', TAG, '--results', str(res), '--out', str(REPO / 'hub' / 'published' / name), '--verify']):
            proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
            if proc.returncode != 0:
                print(proc.stdout + proc.stderr, file=sys.stderr)
                print(f'error: {name}: {Path(cmd[1]).name} failed (above)', file=sys.stderr)
                return 1
        print(f"{name}: seed {r['best_seed']['seed']} lr {lr_name(r['best_seed']['lr'])}, "
              f"top-1 {json.loads(res.read_text())['top1']}")
    return 0


def cmd_revalidate(args) -> int:
    """Validate every published folder (the study's tags and the others) as timm loads it, `local-dir:` from this
    repository, and compare top-1, top-5 and the number of images with its card and its results file."""
    from huggingface_hub import ModelCard

    from hub.publishing import entry_results
    from timm_nf.pretrained import PUBLISHED
    worst = 0.0
    for entry in PUBLISHED:
        folder = REPO / entry.published
        if not (folder / 'model.safetensors').exists():
            print(f'error: {entry.name}: no model.safetensors in {entry.published}; publish it again',
                  file=sys.stderr)
            return 1
        res = Path(args.tmp) / f'{entry.name}.json'
        # The folder relative to the repository root (the working directory): what a card tells a reader to load.
        cmd = validate_command(res, '--model', f'local-dir:{entry.published}', '--pretrained', dataset=entry.dataset)
        proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
        if proc.returncode != 0:
            print(proc.stderr[-2000:], file=sys.stderr)
            return 1
        measured, committed = json.loads(res.read_text()), entry_results(entry)
        card = {r.metric_type: r.metric_value for r in ModelCard.load(folder / 'README.md').data.eval_results}
        diff = max(abs(measured['top1'] - card['accuracy']), abs(measured['top5'] - card['top_5_accuracy']),
                   abs(measured['top1'] - committed['top1']), abs(measured['top5'] - committed['top5']))
        if measured['num_images'] != committed['num_images']:
            diff = float('inf')
        worst = max(worst, diff)
        print(f"{entry.name}: card top-1 {card['accuracy']} top-5 {card['top_5_accuracy']}, re-validated "
              f"{measured['top1']} / {measured['top5']} on {measured['num_images']} {entry.dataset} "
              f"{measured['split']} images, largest difference {diff:.4f}")
    print(f'largest difference {worst:.4f} (allowed < 0.1)')
    return 0 if worst < 0.1 else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest='command', required=True)

    def add(name: str, func, help: str, runs_default: Path = REPO / 'output' / 'study') -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help)
        p.add_argument('--runs', type=Path, default=runs_default, help=f'runs root (default: {runs_default})')
        p.set_defaults(func=func)
        return p

    p = add('run', cmd_run, 'train the grid (resumable)')
    p.add_argument('--depth', type=int, default=56, choices=(56, 110),
                   help='56: every row; 110 (the paper\'s depth): plain and BatchNorm, ReLU and CReLU')
    p.add_argument('--models', nargs='+', default=None, help='only these rows (registered names)')
    p.add_argument('--seeds', type=int, nargs='+', default=list(SEEDS))
    p.add_argument('--workers', type=int, default=2, help='runs trained at once, each pinned to one core')
    p.add_argument('--threads', type=int, default=1, help='torch threads per run')
    p.add_argument('--max-halvings', type=int, default=MAX_HALVINGS, help='lr halvings before a seed is given up')
    p.add_argument('train_args', nargs=argparse.REMAINDER, help='after --: extra train.py flags (e.g. --epochs 2)')
    p = add('report', cmd_report, 'aggregate, copy the small files into docs, write tables and figures')
    p.add_argument('--data', type=Path, default=DATA, help=f'committed study data (default: {DATA})')
    p.add_argument('--doc', type=Path, default=DOC, help=f'document with the generated tables (default: {DOC})')
    p.add_argument('--check', action='store_true', help='only check that --data and --doc match --data/runs')
    p = add('analyze', cmd_analyze, 'SPP / Delta / Table 1 statistics of each row\'s best seed')
    p.add_argument('--data', type=Path, default=DATA, help=f'committed study data, run `report` first; output root '
                   f'(default: {DATA})')
    p = add('publish', cmd_publish, 'validate and publish each row\'s best seed into hub/published/')
    p.add_argument('--data', type=Path, default=DATA,
                   help=f'committed study data, run `report` first (default: {DATA})')
    p.add_argument('--models', nargs='+', default=None, help='only these rows (registered names)')
    p = add('revalidate', cmd_revalidate, 'validate every published folder and compare with its card and results')
    p.add_argument('--tmp', default=os.environ.get('TMPDIR', '/tmp'), help='where the results files go')
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == 'report' and args.check and args.runs == REPO / 'output' / 'study':
        args.runs = args.data / 'runs'

    if getattr(args, 'train_args', None) and args.train_args[0] == '--':
        args.train_args = args.train_args[1:]
    return args.func(args)


if __name__ == '__main__':
    sys.exit(main())
