#!/usr/bin/env python3
"""The small-scale reproductions of Shang, Chiu & Sohn (AAAI 2017), Table 2: the embedded digits and Fashion-MNIST.

A study is a definition (`train.reproduction.study.STUDIES`): dataset, recipe, depth, rows, seeds, base lr and what
"trained" means. `--study digits` trains at ResNet-56 (Table 2's ten rows plus the NormProp3 and NF-ResNet
extensions), at the paper's ResNet-110 (`--depth 110`: the four rows of its Table 1 and Fig. 2, plain and BatchNorm,
ReLU and CReLU) and at ResNet-20 (`--depth 20`); `--study fashion_mnist` trains the Table 2 rows and the NF pair at
ResNet-20 from Debian's dataset-fashion-mnist files. Every row of a study trains with one recipe; the only per-run
change is the paper's rule for unstable models: a run that diverges at the base lr is rerun at half the lr, and
again, until it trains (every run is kept and reported). A run diverges when its loss turns NaN / infinite
(train.py exits with status 3), its final training loss is at chance level (within 5% of ln 10), or (ResNet-20
studies) its training loss is still at chance level after a quarter of the schedule (the run is stopped there).

Selection uses the validation split only: a row's best seed is the lowest final validation error. Fashion-MNIST's
verdicts and published numbers come from the official test split (the final weights, measured once per run into
`test.json`); the digits have no test split.

Run directories: `<runs>/<model>/seed<S>-lr<LR>/` (train.py's outputs plus `study.json`, the run's outcome,
`test.json` and `console.log`). Every command can be stopped and re-run: finished runs are skipped, an interrupted
one continues from its last checkpoint (`--resume auto`). The grid runs seed by seed, so a stop leaves whole seeds.

Commands:
    # train a grid (2 workers, one core each), then aggregate and write docs/REPRODUCTION.md's tables
    python train/study.py run                              # digits, ResNet-56
    python train/study.py run --depth 110                  # digits, ResNet-110
    python train/study.py run --depth 20                   # digits, ResNet-20
    python train/study.py run --study fashion_mnist        # Fashion-MNIST, ResNet-20
    python train/study.py report [--study fashion_mnist]
    # per-row cost of a study's recipe, measured before its grid; the core-hours its runs took, after it
    python train/study.py cost --study fashion_mnist
    python train/study.py spent --study fashion_mnist
    # trained-model statistics (SPP, Delta, Table 1) of each row's best seed, and publishing of the best seeds
    python train/study.py analyze [--study fashion_mnist]
    python train/study.py publish [--study fashion_mnist]
    # on a new machine (the committed copy of a grid has no weights): rerun the best seeds, checked against the record
    python train/study.py restore [--study fashion_mnist]
    # validate every published folder again as timm loads it, each on its split (Fashion-MNIST's tags: test)
    python train/study.py revalidate
"""
import argparse
import json
import os
import queue
import re
import shutil
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from timm_nf.paper import StudyRow  # noqa: E402
from timm_nf.pretrained import PretrainedWeights, find_published  # noqa: E402
from train.reproduction.study import (  # noqa: E402
    GROUPS, MAX_HALVINGS, SeedResult, StudyDefinition, StudyGroup, all_rows, at_chance_early, claims_table,
    classify_run, collect_all, collect_seed, comparison_table, delta_lines, load_results, lr_name, read_outcome,
    read_summary, read_test_top1, replace_blocks, results_table, run_dir, table1_lines,
)
from timm_nf.training.checkpoint import atomic_write_text  # noqa: E402

DOC = REPO / 'docs' / 'REPRODUCTION.md'
POLL_SECONDS = 5.0  # how often a running train.py's summary.csv is read for the early stop at chance
# How a study's row becomes a registered tag (`publish` refuses a row whose tag is not registered).
REGISTER_ROW = {'digits': 'remove the row from UNTRAINED_STUDY_ROWS',
                'fashion_mnist': 'add the row to PUBLISHED_FASHION_MNIST_ROWS'}


def train_command(study: StudyDefinition, model: str, seed: int, lr: float, runs: Path,
                  extra: Sequence[str] = ()) -> List[str]:
    return [
        sys.executable, str(REPO / 'train' / 'train.py'), '--config', str(REPO / study.recipe), '--model', model,
        '--seed', str(seed), '--lr', lr_name(lr), '--output', str(runs / model),
        '--experiment', f'seed{seed}-lr{lr_name(lr)}', '--resume', 'auto', *extra,
    ]


def _env(threads: int) -> Dict[str, str]:
    """The environment of a run's train.py / validate.py: `threads` intra-op threads."""
    return dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))


def _train(cmd: List[str], out: Path, env: Dict[str, str], pin, chance_stop_epochs: Optional[int]) -> int:
    """Run train.py to its end, or stop it (SIGTERM) once its summary shows the study's early stop at chance."""
    with open(out / 'console.log', 'a') as log:
        log.write('$ ' + ' '.join(cmd) + '\n')
        log.flush()
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, preexec_fn=pin, cwd=REPO)
        try:
            while True:
                try:
                    return proc.wait(timeout=POLL_SECONDS)
                except subprocess.TimeoutExpired:
                    pass
                if at_chance_early(read_summary(out), chance_stop_epochs) is not None:
                    proc.terminate()
                    return proc.wait()
        except BaseException:
            proc.terminate()  # an interrupted study leaves no orphan: the run continues from its checkpoint later
            proc.wait()
            raise


def measure_test(study: StudyDefinition, out: Path, threads: int, extra: Sequence[str] = ()) -> None:
    """validate.py on the test split of the run's final weights, into `test.json` (once; skipped for a dataset
    without a test split). The final weights, not `model_best`: nothing is chosen on test, and `model_best` is
    chosen on validation, which the test number must not depend on."""
    if study.verdict_split != 'test' or read_test_top1(out) is not None:
        return
    tmp = out / '.test.json.tmp'
    cmd = validate_command(tmp, '--checkpoint', str(out / 'last.pth.tar'), dataset=study.dataset, split='test')
    # The files the run trained from: train.py's --data-dir among the extra flags (args.yaml leaves out a folder
    # outside the repository), else the dataset's default location.
    cmd += [a for i, a in enumerate(extra) if a.startswith('--data-dir') or (i and extra[i - 1] == '--data-dir')]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=_env(threads))
    if proc.returncode != 0:
        raise RuntimeError(f'{out}: validate.py on the test split failed: {proc.stderr.strip()[-500:]}')
    os.replace(tmp, out / 'test.json')


def run_one(study: StudyDefinition, model: str, seed: int, lr: float, runs: Path, core: Optional[int], threads: int,
            extra: Sequence[str] = ()) -> Dict:
    """Train one (model, seed, lr) run to its end, or continue it; returns and records its outcome."""
    out = run_dir(runs, model, seed, lr)
    done = read_outcome(out)
    if done is not None:
        # Re-derived from the run's files, so that every outcome follows the current rule.
        try:
            status, reason = classify_run(done['exit_status'], read_summary(out), study.chance_stop_epochs)
        except ValueError as e:
            if done['exit_status'] >= 0:
                raise RuntimeError(f'{model} seed {seed} lr {lr}: {e}; see {out}/console.log') from e
            # Stopped early by an earlier form of the rule that no longer holds for it: it goes on from its last
            # checkpoint.
            (out / 'study.json').unlink()
            done = None
        else:
            if (status, reason) != (done['status'], done['reason']):
                done.update(status=status, reason=reason)
                atomic_write_text(str(out / 'study.json'), json.dumps(done, indent=2) + '\n')
    if done is None:
        out.mkdir(parents=True, exist_ok=True)
        pin = (lambda: os.sched_setaffinity(0, {core})) if core is not None and hasattr(os, 'sched_setaffinity') \
            else None
        start = time.time()
        status = _train(train_command(study, model, seed, lr, runs, extra), out, _env(threads), pin,
                        study.chance_stop_epochs)
        summary = read_summary(out)
        try:
            # Anything but a result (bad input, a crash) writes no study.json, so that a re-run retries the run.
            result, reason = classify_run(status, summary, study.chance_stop_epochs)
        except ValueError as e:
            raise RuntimeError(f'{model} seed {seed} lr {lr}: {e}; see {out}/console.log') from e
        done = {'model': model, 'seed': seed, 'lr': lr, 'exit_status': status, 'epochs': len(summary),
                'seconds_last_session': round(time.time() - start, 1), 'status': result, 'reason': reason}
        atomic_write_text(str(out / 'study.json'), json.dumps(done, indent=2) + '\n')
    if done['status'] == 'trained':
        measure_test(study, out, threads, extra)
    return done


def run_row_seed(study: StudyDefinition, row: StudyRow, seed: int, runs: Path, core: Optional[int], threads: int,
                 extra: Sequence[str] = (), max_halvings: int = MAX_HALVINGS) -> List[Dict]:
    """One seed of a row under the lr-halving rule: the base lr, then half of it after each divergence."""
    outcomes = []
    for k in range(max_halvings + 1):
        outcome = run_one(study, row.model, seed, study.base_lr / 2 ** k, runs, core, threads, extra)
        outcomes.append(outcome)
        if outcome['status'] == 'trained':
            break
    return outcomes


def recipe_img_size(study: StudyDefinition) -> int:
    import yaml
    return int(yaml.safe_load((REPO / study.recipe).read_text())['img_size'])


def cost_hint(study: StudyDefinition, model: str) -> float:
    """Multiply-accumulates per image, so that the longest runs start first and the workers finish together."""
    from timm_nf.profile import model_stats
    return model_stats(model, img_size=recipe_img_size(study)).gmacs


def selected_study(args) -> Tuple[StudyGroup, StudyDefinition]:
    group = GROUPS[args.study]
    try:
        return group, group.study(args.depth)
    except KeyError:
        depths = ', '.join(str(s.depth) for _, s in group.parts)
        raise SystemExit(f'error: the {args.study} study has no --depth {args.depth}; use one of {depths}') from None


def cmd_run(args) -> int:
    _, study = selected_study(args)
    rows = [r for r in study.rows if not args.models or r.model in args.models]
    if args.models and len(rows) != len(set(args.models)):
        unknown = sorted(set(args.models) - {r.model for r in rows})
        raise SystemExit(f"error: {', '.join(unknown)} not rows of the {study.name} study; its rows: "
                         + ', '.join(r.model for r in study.rows))
    cost = {r.model: cost_hint(study, r.model) for r in rows}
    jobs = sorted(((r, s) for r in rows for s in (args.seeds or study.seeds_of(r))),
                  key=lambda j: (j[1], -cost[j[0].model]))  # seed by seed: a stop leaves whole seeds
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
                for o in run_row_seed(study, row, seed, args.runs, core, args.threads, args.train_args,
                                      args.max_halvings):
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


def cmd_cost(args) -> int:
    """Seconds per epoch and per run of each row of a study's recipe, and the grid's core-hours (before reruns),
    measured with timm_nf.benchmark: every row interleaved round by round, one thread, the recipe's batch and
    image size, into `<data>/cost.json` and `<data>/cost.md`."""
    import math
    import platform
    import yaml
    import torch
    from timm_nf.benchmark import bench_variants

    _, study = selected_study(args)
    recipe = yaml.safe_load((REPO / study.recipe).read_text())
    from timm_nf.data import create_dataset
    sizes = {split: len(create_dataset(study.dataset, split=split, num_samples=recipe.get(f'{key}_num_samples')))
             for split, key in (('train', 'train'), ('validation', 'val'))}
    sizes['test'] = len(create_dataset(study.dataset, split='test')) if study.verdict_split == 'test' else 0
    batch, img, epochs = int(recipe['batch_size']), int(recipe['img_size']), int(recipe['epochs'])
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    specs = [r.model for r in study.rows]
    kw = dict(batch_size=batch, img_size=img, num_warm_iter=1, num_bench_iter=args.steps, rounds=args.rounds,
              progress=lambda msg: print(msg, flush=True))
    train = {r.model: r for r in bench_variants(specs, bench='train', **kw)}
    infer = {r.model: r for r in bench_variants(specs, bench='infer', **kw)}
    load_after = os.getloadavg()
    steps = {split: math.ceil(n / batch) for split, n in sizes.items()}
    rows, total = [], 0.0
    for r in study.rows:
        epoch_s = steps['train'] * train[r.model].step_ms / 1e3 + steps['validation'] * infer[r.model].step_ms / 1e3
        run_s = epochs * epoch_s + steps['test'] * infer[r.model].step_ms / 1e3
        seeds = len(study.seeds_of(r))
        total += seeds * run_s
        rows.append(dict(model=r.model, label=r.label, train_step_s=round(train[r.model].step_ms / 1e3, 3),
                         eval_step_s=round(infer[r.model].step_ms / 1e3, 3), epoch_min=round(epoch_s / 60, 2),
                         run_min=round(run_s / 60, 1), seeds=seeds, core_hours=round(seeds * run_s / 3600, 2)))
    record = dict(study=study.name, recipe=study.recipe, batch_size=batch, img_size=img, epochs=epochs, images=sizes,
                  threads=args.threads, torch=torch.__version__, machine=platform.machine(),
                  load_average_before=[round(x, 2) for x in load_before],
                  load_average_after=[round(x, 2) for x in load_after],
                  grid_core_hours_before_reruns=round(total / 3600, 2), rows=rows)
    lines = [f'# Cost of the {study.name} study, per row (measured before its grid)', '',
             f'`python train/study.py cost --study {args.study} --depth {study.depth}`: `{study.recipe}` at batch '
             f'{batch}, {img} px, {args.threads} thread(s), torch {torch.__version__}; timm_nf.benchmark, every row '
             f'interleaved, median of {args.rounds} rounds of {args.steps} steps (plain SGD step; data loading not '
             f"included). Images per epoch: {sizes['train']} train + {sizes['validation']} validation; "
             f"{sizes['test']} test images once per run. Load average (1 min) {load_before[0]:.2f} before, "
             f'{load_after[0]:.2f} after: on a machine shared with other work the steps are slower than alone.', '',
             '| row | model | train step s | eval step s | min / epoch | min / run | seeds | core-hours |',
             '|---|---|---:|---:|---:|---:|---:|---:|']
    for r in rows:
        lines.append(f"| {r['label']} | `{r['model']}` | {r['train_step_s']:.3f} | {r['eval_step_s']:.3f} | "
                     f"{r['epoch_min']:.2f} | {r['run_min']:.1f} | {r['seeds']} | {r['core_hours']:.2f} |")
    lines += ['', f'Grid: {total / 3600:.1f} core-hours before reruns (a diverged run is rerun at half the lr; a run '
              'still at chance after a quarter of the schedule stops there).']
    args.data.mkdir(parents=True, exist_ok=True)
    atomic_write_text(str(args.data / 'cost.json'), json.dumps(record, indent=1) + '\n')
    atomic_write_text(str(args.data / 'cost.md'), '\n'.join(lines) + '\n')
    print('\n'.join(lines))
    return 0


# train.py's log lines start with their time (logging's default asctime); each session of a run (a start or a
# continuation) appends to the same train.log and begins with this message.
LOG_TIME = re.compile(r'^(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}),(\d{3}) ')
SESSION_START = 'Training with'


def train_seconds(log: Path) -> Tuple[float, int]:
    """Wall seconds train.py spent on a run, and its number of sessions, from its train.log: each session from its
    first logged line to its last. The part of an interrupted epoch after the session's last line is not counted."""
    sessions: List[List[datetime]] = []
    for line in log.read_text().splitlines():
        m = LOG_TIME.match(line)
        if m is None:
            continue
        t = datetime.strptime(m.group(1), '%Y-%m-%d %H:%M:%S').replace(microsecond=int(m.group(2)) * 1000)
        if SESSION_START in line or not sessions:
            sessions.append([t, t])
        sessions[-1][1] = t
    return sum((end - begin).total_seconds() for begin, end in sessions), len(sessions)


TRAIN_TIME = 'train_time.json'  # `train_seconds` of a finished run, in its committed copy (which has no train.log)
SUPERSEDED = 'superseded'  # `<runs>/<model>/superseded/`: the runs of a seed that `restore --supersede` replaced


def run_train_seconds(run: Path) -> Optional[Tuple[float, int]]:
    """`train_seconds` of a run directory: from its train.log, or the committed copy's `TRAIN_TIME`; None without
    either."""
    if (run / 'train.log').exists():
        return train_seconds(run / 'train.log')
    if (run / TRAIN_TIME).exists():
        record = json.loads((run / TRAIN_TIME).read_text())
        return record['seconds'], record['sessions']
    return None


def cmd_spent(args) -> int:
    """Core-hours the grid's runs under --runs took (each run is one single-thread train.py), from their train.logs
    or, in the committed copy, `TRAIN_TIME`: per row and in all, reruns and diverged runs included, beside the `cost`
    prediction where there is one; into `<data>/spent<depth>.json` and `.md` (no suffix for a group's first study)."""
    group, study = selected_study(args)
    suffix = part_suffix(group, study)
    predicted = {}
    if not suffix and (args.data / 'cost.json').exists():  # `cost` measures a group's first study
        predicted = {r['model']: r for r in json.loads((args.data / 'cost.json').read_text())['rows']}
    rows, total, missing = [], 0.0, []
    for r in study.rows:
        # the runs of the grid's record and those a rerun on another machine superseded (`restore`)
        runs = sorted(d for pattern in ('seed*-lr*', f'{SUPERSEDED}/seed*-lr*')
                      for d in (args.runs / r.model).glob(pattern) if d.is_dir())
        seconds = epochs = sessions = 0
        status = {'trained': 0, 'diverged': 0, 'unfinished': 0}
        for d in runs:
            measured = run_train_seconds(d)
            if measured is None:
                missing.append(str(d))
                continue
            s, n = measured
            seconds, sessions, epochs = seconds + s, sessions + n, epochs + len(read_summary(d))
            outcome = read_outcome(d)
            status['unfinished' if outcome is None else outcome['status']] += 1
        total += seconds
        cost = predicted.get(r.model)
        rows.append(dict(model=r.model, label=r.label, runs=len(runs), sessions=sessions, epochs=epochs, **status,
                         core_hours=round(seconds / 3600, 3),
                         min_per_epoch=round(seconds / 60 / epochs, 2) if epochs else None,
                         predicted_min_per_epoch=cost['epoch_min'] if cost else None))
    if missing:
        raise SystemExit(f"error: neither train.log nor {TRAIN_TIME} in {', '.join(missing)}; --runs must be the "
                         f'folder the grid trained in, or its copy by `report`')
    record = dict(study=study.name, runs_root=args.runs.name, core_hours=round(total / 3600, 2), rows=rows)
    lines = [f'# Core-hours the {study.name} grid took', '',
             f'`python train/study.py spent --study {args.study} --depth {study.depth}`: every run of the grid '
             '(reruns at a lower lr, runs stopped at chance, unfinished runs and runs a rerun superseded included), '
             'the wall time of its single-thread train.py over all its sessions, from its train.log. Two runs '
             'trained at once on a '
             '2-core machine that also ran other work, so these are upper bounds of the core time. Not counted: '
             "the test split's measurement of each trained run (validate.py), and the part of an interrupted epoch "
             'that a continuation repeated.', '',
             '| row | model | runs | trained | diverged | unfinished | epochs | min / epoch | '
             + ('predicted min / epoch | ' if predicted else '') + 'core-hours |',
             '|---|---|---:|---:|---:|---:|---:|---:|' + ('---:|' if predicted else '') + '---:|']
    for r in rows:
        per_epoch = '-' if r['min_per_epoch'] is None else f"{r['min_per_epoch']:.2f}"
        lines.append(f"| {r['label']} | `{r['model']}` | {r['runs']} | {r['trained']} | {r['diverged']} | "
                     f"{r['unfinished']} | {r['epochs']} | {per_epoch} | "
                     + (f"{r['predicted_min_per_epoch']:.2f} | " if predicted else '') + f"{r['core_hours']:.2f} |")
    lines += ['', f'In all: {total / 3600:.1f} core-hours.']
    args.data.mkdir(parents=True, exist_ok=True)
    atomic_write_text(str(args.data / f'spent{suffix}.json'), json.dumps(record, indent=1) + '\n')
    atomic_write_text(str(args.data / f'spent{suffix}.md'), '\n'.join(lines) + '\n')
    print('\n'.join(lines))
    return 0


SMALL_FILES = ('summary.csv', 'study.json', 'args.yaml', 'test.json')


def _read_csv(path: Path) -> List[Dict[str, str]]:
    import csv
    with open(path, newline='') as f:
        return list(csv.DictReader(f))


def best_checkpoint(runs: Path, row: Dict) -> Path:
    """Final weights of a row's best seed (`collect_study` row with a `best_seed`)."""
    return run_dir(runs, row['model'], row['best_seed']['seed'], row['best_seed']['lr']) / 'last.pth.tar'


def published_run(row: Dict, tag: str) -> Optional[Path]:
    """The committed weights of a row's best seed, when its published folder `<model>.<tag>` holds exactly that
    run."""
    import yaml
    folder = REPO / 'hub' / 'published' / f"{row['model']}.{tag}"
    try:
        hparams = yaml.safe_load((folder / 'train_hparams.yaml').read_text())
    except FileNotFoundError:
        return None
    same = (hparams.get('seed'), hparams.get('lr')) == (row['best_seed']['seed'], row['best_seed']['lr'])
    weights = folder / 'model.safetensors'
    return weights if same and weights.is_file() else None


def best_weights(runs: Path, row: Dict, tag: str) -> Path:
    """A row's best-seed weights: the run's checkpoint, or (runs of an earlier session) the published copy of it."""
    ckpt = best_checkpoint(runs, row)
    if ckpt.is_file():
        return ckpt
    published = published_run(row, tag)
    if published is None:
        raise SystemExit(f"error: {row['model']}: neither {ckpt} nor a published copy of seed "
                         f"{row['best_seed']['seed']} exists; rerun that seed: python train/study.py restore "
                         f"--study {tag} --models {row['model']} --runs {ckpt.parents[2]}")
    return published


def summary_difference(committed: List[Dict[str, float]], rerun: List[Dict[str, float]]) -> Optional[str]:
    """Where a rerun's summary.csv first differs from the committed one (every column the committed file has, exact
    to the digits train.py wrote), or None when it repeats it epoch by epoch."""
    if len(rerun) != len(committed):
        return f'{len(rerun)} epochs, the committed run {len(committed)}'
    for epoch, (a, b) in enumerate(zip(committed, rerun), start=1):
        for key, value in a.items():
            if b.get(key) != value:
                return f'epoch {epoch} {key} {b.get(key)}, the committed run {value}'
    return None


def seed_runs(runs: Path, model: str, seed: int) -> List[Path]:
    """The run folders of one seed (each lr it tried)."""
    return sorted(p for p in (Path(runs) / model).glob(f'seed{seed}-lr*') if p.is_dir())


def seed_difference(committed: SeedResult, rerun: SeedResult, committed_runs: Path, rerun_runs: Path,
                    model: str) -> Optional[str]:
    """Where a seed trained again first differs from its committed record (the lrs that diverged and why, the lr
    that trained, every column of every epoch of its summary.csv, its test split numbers), or None when it repeats
    it."""
    if (rerun.lrs_diverged, rerun.diverge_reasons, rerun.lr) != (committed.lrs_diverged, committed.diverge_reasons,
                                                                 committed.lr):
        return (f'diverged at lr {rerun.lrs_diverged} and trained at {rerun.lr}, the record diverged at '
                f'{committed.lrs_diverged} and trained at {committed.lr}')
    if rerun.lr is None:
        return None
    ours, theirs = (run_dir(r, model, rerun.seed, rerun.lr) for r in (rerun_runs, committed_runs))
    differs = summary_difference(read_summary(theirs), read_summary(ours))
    if differs is None and rerun.test_error != committed.test_error:
        differs = f'test error {rerun.test_error}, the record {committed.test_error}'
    return differs


def _move_runs(runs: Sequence[Path], folder: Path) -> None:
    """Move run folders into `folder` (renames on one filesystem), none if one of them is there already."""
    if not runs:
        return
    for run in runs:
        if (folder / run.name).exists():
            raise RuntimeError(f'{folder / run.name} exists already; move it away first')
    folder.mkdir(parents=True, exist_ok=True)
    for run in runs:
        os.replace(run, folder / run.name)


def restore_seed(study: StudyDefinition, row: StudyRow, seed: int, runs: Path, data_runs: Path, threads: int,
                 extra: Sequence[str] = (), supersede: bool = False) -> str:
    """Train a seed again, from scratch and under the lr-halving rule, to get back the final weights a new machine
    lost (a grid's committed copy keeps only `SMALL_FILES`).

    If the rerun repeats the committed record (`seed_difference`: CPU training with one thread repeats itself bit
    for bit on one machine, as the test of `restore` checks on the weights), its `last.pth.tar` joins the run's
    folder under `runs`, with the committed `SMALL_FILES`, so that `run` sees the run finished. Another machine's
    CPU (other vector instructions, other rounding) trains another trajectory from the same seed; then the rerun
    replaces the seed's record only with `supersede`: the seed's runs, committed and local, move to
    `<model>/superseded/`, and the rerun's take their place (their small files into `data_runs`). The rerun trains
    under `<runs>/.restore/` (a stopped restore continues there).

    Returns:
        'restored' or 'superseded'.

    Raises:
        RuntimeError: a run failed, or the rerun differs from the record and `supersede` is off (it is left in
            `.restore`).
    """
    scratch = runs / '.restore'
    run_row_seed(study, row, seed, scratch, None, threads, extra)
    committed, rerun = (collect_seed(r, row.model, seed, study) for r in (data_runs, scratch))
    if not rerun.finished:
        raise RuntimeError(f'{row.model} seed {seed}: the rerun in {scratch} did not finish')
    differs = seed_difference(committed, rerun, data_runs, scratch, row.model)
    if differs is None:
        src, dst = run_dir(scratch, row.model, seed, rerun.lr), run_dir(runs, row.model, seed, rerun.lr)
        dst.mkdir(parents=True, exist_ok=True)
        committed_run = run_dir(data_runs, row.model, seed, rerun.lr)
        for name in SMALL_FILES + (TRAIN_TIME,):
            if (committed_run / name).exists() and not (dst / name).exists():
                shutil.copyfile(committed_run / name, dst / name)
        os.replace(src / 'last.pth.tar', dst / 'last.pth.tar')  # one filesystem: the checkpoint appears whole
        for run in seed_runs(scratch, row.model, seed):
            shutil.rmtree(run)
        return 'restored'
    if not supersede:
        raise RuntimeError(f'{row.model} seed {seed}: the rerun in {scratch} does not repeat the committed run '
                           f'({differs}); its weights were not restored (--supersede: let the rerun replace the '
                           'record)')
    for root in (data_runs, runs):
        _move_runs(seed_runs(root, row.model, seed), root / row.model / SUPERSEDED)
    # the runs the rule made (a folder without an outcome is an earlier attempt's, beyond the lr that trained)
    _move_runs([r for r in seed_runs(scratch, row.model, seed) if read_outcome(r) is not None], runs / row.model)
    copy_small_files(runs, data_runs, pattern=f'{row.model}/seed{seed}-lr*/study.json')
    return 'superseded'


def cmd_restore(args) -> int:
    """Give every finished row's best seed its weights again (`restore_seed`), so that `analyze` and `publish` can
    run on a machine that has only the committed files; with --supersede a rerun that trained another trajectory
    replaces its seed's record, the row's best seed is chosen again, on validation, and restored in turn."""
    group = GROUPS[args.study]
    done = set()
    while True:
        results = collect_all(args.data / 'runs', group)  # the committed record, as restores change it
        todo, ready = [], []  # ready: one line per row it leaves as it is
        for _, study, part in _part_results(results, group):
            for r in part['rows']:
                if (args.models and r['model'] not in args.models) or r['best_seed'] is None:
                    continue
                if r['seeds_finished'] != r['seeds_planned']:  # its best seed may still change
                    ready.append(f"{r['model']}: {r['seeds_finished']} of {r['seeds_planned']} seeds finished, "
                                 'not restored')
                elif best_checkpoint(args.runs, r).is_file() or published_run(r, study.tag) is not None:
                    ready.append(f"{r['model']}: seed {r['best_seed']['seed']} has its weights")
                elif (r['model'], r['best_seed']['seed']) not in done:
                    todo.append((study, r))
        if not todo:
            print('\n'.join(ready))
            return 0
        study, r = todo[0]
        seed = r['best_seed']['seed']
        row = next(x for x in study.rows if x.model == r['model'])
        began = time.time()
        try:
            how = restore_seed(study, row, seed, args.runs, args.data / 'runs', args.threads, args.train_args,
                               args.supersede)
        except RuntimeError as e:
            print(f'error: {e}', file=sys.stderr)
            return 1
        done.add((r['model'], seed))
        after = collect_seed(args.data / 'runs', r['model'], seed, study)
        print(f"{r['model']}: seed {seed} {how} ({(time.time() - began) / 60:.1f} min), trained at lr "
              f"{lr_name(after.lr) if after.lr else '-'}, validation error {after.val_error}%"
              + (' (the rerun replaced the record: a new machine)' if how == 'superseded' else ''), flush=True)


def validate_command(results_file: Path, *model_args: str, dataset: str = 'digits',
                     split: str = 'validation') -> List[str]:
    """train/validate.py on `split` of `dataset`, writing its JSON results to `results_file`."""
    return [sys.executable, str(REPO / 'train' / 'validate.py'), *model_args, '--dataset', dataset, '--split', split,
            '-j', '0', '--results-file', str(results_file), '--results-format', 'json']


def copy_small_files(runs: Path, data_runs: Path, pattern: str = '*/seed*-lr*/study.json') -> int:
    """Copy each finished run's `SMALL_FILES` (the runs whose `study.json` matches `pattern`) into the committed
    layout, and the time its train.log records (`TRAIN_TIME`; the log itself names the machine's folders)."""
    n = 0
    for outcome in sorted(runs.glob(pattern)):
        src = outcome.parent
        dst = data_runs / src.relative_to(runs)
        dst.mkdir(parents=True, exist_ok=True)
        for name in SMALL_FILES:
            if (src / name).exists():
                shutil.copyfile(src / name, dst / name)
        if (src / 'train.log').exists():
            seconds, sessions = train_seconds(src / 'train.log')
            atomic_write_text(str(dst / TRAIN_TIME), json.dumps(dict(seconds=round(seconds, 3), sessions=sessions))
                              + '\n')
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
                (f" lr {', '.join(lr_name(x) for x in r['lrs'])}" if r['lrs'] != [results['base_lr']] else '')
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


def part_suffix(group: StudyGroup, study: StudyDefinition) -> str:
    """Suffix of a group part's tables, figure and files: '' for the first part, its depth for the others ('110',
    '20')."""
    return '' if study is group.parts[0][1] else str(study.depth)


def _part_results(results: Dict, group: StudyGroup) -> List[Tuple[str, StudyDefinition, Dict]]:
    """(`part_suffix`, study, results) of each part of a `collect_all` output."""
    return [(part_suffix(group, study), study, results[key] if key else results) for key, study in group.parts]


def render_blocks(results: Dict, group: StudyGroup, data: Path, doc: Path = DOC) -> Dict[str, List[str]]:
    """The generated parts of `doc` (docs/REPRODUCTION.md) from a study's committed `data`, by marker name; runs are
    linked relative to `doc`."""
    link = Path(os.path.relpath(data, doc.parent)).as_posix() + '/runs/'
    blocks = {}
    for suffix, _, part in _part_results(results, group):
        blocks[f'results{suffix}'] = results_table(part, link=link)
        blocks[f'claims{suffix}'] = claims_table(part)
    if group.compare_with:
        # The other group's committed aggregate, so that its report and this one never disagree about it.
        other = GROUPS[group.compare_with]
        other_results = load_results(other.data / 'results.json')
        blocks['comparison'] = comparison_table(
            [part for _, _, part in _part_results(other_results, other) + _part_results(results, group)])
    if (data / 'analysis' / 'activations.csv').exists():
        blocks['table1'] = table1_lines(_read_csv(data / 'analysis' / 'activations.csv'), results)
    if (data / 'analysis' / 'delta.csv').exists():
        blocks['delta'] = delta_lines(_read_csv(data / 'analysis' / 'delta.csv'), results)
    return blocks


def results_current(results_file: Path, results: Dict) -> bool:
    """Whether `results_file` holds exactly `results` (a `collect_all` of the committed runs)."""
    return results_file.exists() and load_results(results_file) == json.loads(json.dumps(results))


def cmd_report(args) -> int:
    group, data = GROUPS[args.study], args.data
    data_runs = data / 'runs'
    if not args.check and args.runs.resolve() != data_runs.resolve():
        print(f'copied {copy_small_files(args.runs, data_runs)} runs into {data_runs}')
    results = collect_all(data_runs, group)
    blocks = render_blocks(results, group, data, args.doc)
    results_file = data / 'results.json'
    doc_text = args.doc.read_text()
    try:
        new_doc = replace_blocks(doc_text, blocks, args.doc, prefix=group.doc_prefix)
    except ValueError as e:
        raise SystemExit(f'error: {e}') from None
    if args.check:
        stale = []
        if not results_current(results_file, results):
            stale.append(str(results_file))
        if new_doc != doc_text:
            stale.append(str(args.doc))
        if stale:
            print(f"error: {' and '.join(stale)} out of date with {data_runs}; run python train/study.py report "
                  f"--study {args.study}", file=sys.stderr)
            return 1
        print(f'{results_file} and {args.doc} match {data_runs}')
        return 0
    atomic_write_text(str(results_file), json.dumps(results, indent=1) + '\n')
    atomic_write_text(str(args.doc), new_doc)
    for suffix, _, part in _part_results(results, group):
        plot_curves(part, data / f'curves{suffix}.png')
    print('\n'.join(blocks['results']))
    complete = all(part['complete'] for _, _, part in _part_results(results, group))
    print(f"\nwrote {results_file}, the curves in {data} and the tables of {args.doc}"
          + ('' if complete else ' (the study is not complete)'))
    return 0


def cmd_analyze(args) -> int:
    """SPP, Delta and Table 1 statistics of each row's best seed, on 360 validation images, in eval mode."""
    from timm_nf.analysis import (
        classifier_activations, create_analysis_model, dataset_batches, residual_differences, save_analysis,
        signal_propagation, trace_model,
    )
    # The committed record (after `report`) knows every row, also those trained in an earlier session whose
    # checkpoints are not in --runs; their weights come from the published copy.
    group, data = GROUPS[args.study], args.data
    study = group.parts[0][1]
    results = collect_all(data / 'runs', group)
    img = recipe_img_size(study)
    rows: Dict[str, List[Dict]] = {'spp': [], 'delta': [], 'activations': []}
    for r in all_rows(results):
        if r['best_seed'] is None:
            print(f"{r['model']}: no trained seed, skipped")
            continue
        model = create_analysis_model(r['model'], checkpoint=str(best_weights(args.runs, r, study.tag)))
        # 360 validation images (all of the digits'); BatchNorm with its running statistics (the trained model as
        # it is used).
        batches = dataset_batches(model, study.dataset, None, 'validation', (3, img, img), batch_size=90,
                                  num_batches=4)
        trace = trace_model(model, batches, batch_stats=False)
        common = dict(model=r['model'], input=study.dataset, unit_gains=False)
        for kind, measure in (('spp', signal_propagation), ('delta', residual_differences),
                              ('activations', classifier_activations)):
            rows[kind] += [dict(common, **x) for x in measure(trace)]
        print(f"{r['model']}: seed {r['best_seed']['seed']}, {len(trace.blocks)} blocks traced")
    out = data / 'analysis'
    for kind, kind_rows in rows.items():
        paths = save_analysis(kind, kind_rows, str(out), title=f'{kind}: trained rows (best seed), {study.dataset}')
        print('wrote ' + ', '.join(paths))
    return 0


def cmd_publish(args) -> int:
    """Validate each row's best seed and publish it as `<model>.<tag>` with hub/publish.py (--verify), measured on
    the split the study reports (the test split where the dataset has one)."""
    group = GROUPS[args.study]
    study = group.parts[0][1]
    tag = study.tag
    results = collect_all(args.data / 'runs', group)  # the committed record, as in cmd_analyze
    results_file = args.data / 'results.json'
    # The card quotes the seeds' median from results.json: a record changed since (a seed superseded) would leave
    # the card with the old one.
    if not results_current(results_file, results):
        raise SystemExit(f'error: {results_file} is out of date with {args.data / "runs"}; run python train/study.py '
                         f'report --study {args.study} first')
    img = recipe_img_size(study)
    for r in all_rows(results):
        if args.models and r['model'] not in args.models:
            continue
        if r['best_seed'] is None:
            print(f"{r['model']}: no trained seed, not published")
            continue
        if r['seeds_finished'] != r['seeds_planned']:  # its card's "best of N" would not hold yet
            print(f"{r['model']}: {r['seeds_finished']} of {r['seeds_planned']} seeds finished, not published")
            continue
        if find_published(r['model'], tag) is None:  # the card's study text comes from the registry entry
            raise SystemExit(f"error: {r['model']}.{tag} is not a registered tag, so its card would lack the study's "
                             f'text; {REGISTER_ROW[tag]} (timm_nf/pretrained.py), then publish')
        ckpt = best_weights(args.runs, r, tag)  # the run's checkpoint, or a one-line error when no copy of it exists
        name = f"{r['model']}.{tag}"
        if ckpt != best_checkpoint(args.runs, r):
            print(f"{name}: seed {r['best_seed']['seed']} is published already (its run is from an earlier session)")
            continue
        res = REPO / 'hub' / 'results' / f'{name}.json'
        for cmd in (
                validate_command(res, '--model', r['model'], '--checkpoint', str(ckpt), '--img-size', str(img),
                                 dataset=study.dataset, split=study.verdict_split),
                [sys.executable, str(REPO / 'hub' / 'publish.py'), '--checkpoint', str(ckpt), '--model', r['model'],
                 '--tag', tag, '--results', str(res), '--out', str(REPO / 'hub' / 'published' / name), '--verify']):
            proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
            if proc.returncode != 0:
                print(proc.stdout + proc.stderr, file=sys.stderr)
                print(f'error: {name}: {Path(cmd[1]).name} failed (above)', file=sys.stderr)
                return 1
        print(f"{name}: seed {r['best_seed']['seed']} lr {lr_name(r['best_seed']['lr'])}, "
              f"top-1 {json.loads(res.read_text())['top1']}")
    return 0


def revalidate_entry(entry: PretrainedWeights, root: Path, tmp: Path,
                     extra: Sequence[str] = ()) -> Tuple[Dict, Dict, float]:
    """Validate the published folder of `entry` as a reader of its card would: `local-dir:` relative to `root`
    (the checkout, the working directory), on the entry's metrics split (the test split for Fashion-MNIST's tags),
    with timm's eval transform from the folder's `config.json`; compare top-1, top-5 and the number of images with
    its card and its results file. `extra`: further validate.py flags (`--num-samples N` for a folder whose results
    measured the first N images).

    Returns:
        The measured results row, the card's metrics (`model-index`: accuracy, top_5_accuracy) and the largest
        difference (inf when the number of images differs).

    Raises:
        RuntimeError: validate.py failed (the end of its error output).
    """
    from huggingface_hub import ModelCard

    from hub.publishing import entry_results
    res = tmp / f'{entry.name}.json'
    cmd = validate_command(res, '--model', f'local-dir:{entry.published}', '--pretrained', *extra,
                           dataset=entry.dataset, split=entry.metrics_split)
    proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    measured, committed = json.loads(res.read_text()), entry_results(entry, root)
    card_data = ModelCard.load(root / entry.published / 'README.md').data
    card = {r.metric_type: r.metric_value for r in card_data.eval_results}
    diff = max(abs(measured['top1'] - card['accuracy']), abs(measured['top5'] - card['top_5_accuracy']),
               abs(measured['top1'] - committed['top1']), abs(measured['top5'] - committed['top5']))
    if measured['num_images'] != committed['num_images']:
        diff = float('inf')
    return measured, card, diff


def cmd_revalidate(args) -> int:
    """Validate every published folder (the study's tags and the others) as timm loads it, `local-dir:` from this
    repository, each on its own split, and compare top-1, top-5 and the number of images with its card and its
    results file."""
    from timm_nf.pretrained import PUBLISHED
    worst = 0.0
    for entry in PUBLISHED:
        if not (REPO / entry.published / 'model.safetensors').exists():
            print(f'error: {entry.name}: no model.safetensors in {entry.published}; publish it again',
                  file=sys.stderr)
            return 1
        try:
            measured, card, diff = revalidate_entry(entry, REPO, Path(args.tmp))
        except RuntimeError as e:
            print(e, file=sys.stderr)
            return 1
        worst = max(worst, diff)
        print(f"{entry.name}: card top-1 {card['accuracy']} top-5 {card['top_5_accuracy']}, re-validated "
              f"{measured['top1']} / {measured['top5']} on {measured['num_images']} {entry.dataset} "
              f"{measured['split']} images, largest difference {diff:.4f}")
    print(f'largest difference {worst:.4f} (allowed < 0.1)')
    return 0 if worst < 0.1 else 1


def default_runs(study: str) -> Path:
    return REPO / 'output' / ('study' if study == 'digits' else f'study_{study}')


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest='command', required=True)

    def add(name: str, func, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help)
        p.add_argument('--study', default='digits', choices=sorted(GROUPS), help='which study (default: digits)')
        p.add_argument('--runs', type=Path, default=None,
                       help=f"runs root (default: {default_runs('digits').relative_to(REPO)} for the digits, "
                            f"{default_runs('fashion_mnist').relative_to(REPO)} for Fashion-MNIST)")
        p.set_defaults(func=func)
        return p

    def add_data(p: argparse.ArgumentParser, what: str) -> None:
        p.add_argument('--data', type=Path, default=None, help=f'{what} (default: the study\'s folder, '
                       + ', '.join(f'{g.data.relative_to(REPO)}' for g in GROUPS.values()) + ')')

    p = add('run', cmd_run, 'train the grid (resumable)')
    p.add_argument('--depth', type=int, default=None,
                   help='digits: 56 (default, every row), 110 (the paper\'s depth: plain and BatchNorm, ReLU and '
                        'CReLU) or 20 (the Table 2 rows and the NF pair); fashion_mnist: 20')
    p.add_argument('--models', nargs='+', default=None, help='only these rows (registered names)')
    p.add_argument('--seeds', type=int, nargs='+', default=None,
                   help="only these seeds (default: the study's, 5 for the Table 1 rows of the ResNet-20 studies)")
    p.add_argument('--workers', type=int, default=2, help='runs trained at once, each pinned to one core')
    p.add_argument('--threads', type=int, default=1, help='torch threads per run')
    p.add_argument('--max-halvings', type=int, default=MAX_HALVINGS, help='lr halvings before a seed is given up')
    p.add_argument('train_args', nargs=argparse.REMAINDER, help='after --: extra train.py flags (e.g. --epochs 2)')
    p = add('cost', cmd_cost, 'measure each row\'s seconds per epoch and the grid\'s core-hours (before the grid)')
    p.add_argument('--depth', type=int, default=None, help='as for run')
    add_data(p, 'output folder of cost.json / cost.md')
    p.add_argument('--threads', type=int, default=1, help='torch threads (default 1, as each run of the grid)')
    p.add_argument('--steps', type=int, default=3, help='steps per round')
    p.add_argument('--rounds', type=int, default=3, help='rounds (the median is used)')
    p = add('spent', cmd_spent, 'core-hours the runs under --runs took, from their train.logs (or the committed '
                                'copy\'s train_time.json)')
    p.add_argument('--depth', type=int, default=None, help='as for run')
    add_data(p, 'output folder of spent.json / spent.md')
    p = add('report', cmd_report, 'aggregate, copy the small files into docs, write tables and figures')
    add_data(p, 'committed study data')
    p.add_argument('--doc', type=Path, default=DOC, help=f'document with the generated tables (default: {DOC})')
    p.add_argument('--check', action='store_true', help='only check that --data and --doc match --data/runs')
    p = add('analyze', cmd_analyze, 'SPP / Delta / Table 1 statistics of each row\'s best seed')
    add_data(p, 'committed study data, run `report` first; output root')
    p = add('publish', cmd_publish, 'validate and publish each row\'s best seed into hub/published/')
    add_data(p, 'committed study data, run `report` first')
    p.add_argument('--models', nargs='+', default=None, help='only these rows (registered names)')
    p = add('restore', cmd_restore, 'rerun the best seeds whose weights a new machine lost, kept only if the rerun '
                                    'repeats the committed run')
    add_data(p, 'committed study data')
    p.add_argument('--models', nargs='+', default=None, help='only these rows (registered names)')
    p.add_argument('--threads', type=int, default=1, help='torch threads (1, as the grid trained)')
    p.add_argument('--supersede', action='store_true',
                   help='a rerun that does not repeat its record (another machine) replaces it; the old runs move to '
                        f'<model>/{SUPERSEDED}/')
    p.add_argument('train_args', nargs=argparse.REMAINDER, help='after --: the extra train.py flags the grid had')
    p = add('revalidate', cmd_revalidate, 'validate every published folder and compare with its card and results')
    p.add_argument('--tmp', default=os.environ.get('TMPDIR', '/tmp'), help='where the results files go')
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    if hasattr(args, 'data') and args.data is None:
        args.data = GROUPS[args.study].data
    if args.runs is None:
        check = args.command == 'report' and args.check  # the committed runs themselves
        args.runs = args.data / 'runs' if check else default_runs(args.study)
    if getattr(args, 'depth', 0) is None:
        args.depth = GROUPS[args.study].parts[0][1].depth
    if getattr(args, 'train_args', None) and args.train_args[0] == '--':
        args.train_args = args.train_args[1:]
    return args.func(args)


if __name__ == '__main__':
    sys.exit(main())
