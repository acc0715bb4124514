#!/usr/bin/env python3
"""Probes behind the design choices of docs/REPRODUCTION.md ("Design choices the paper leaves open").

    # does a variant start to learn? (the study's data and optimizer, constant lr, 4 epochs, several seeds)
    python train/probe.py train --variants 'crelu_resnet56_plain:weight_init=xavier_normal' \\
        'crelu_resnet56_plain:weight_init=torch7_default' --seeds 0 1 2 --lrs 0.025 0.00625 --out probe.csv
    # timm's own train.py with a per-epoch warmup (TIMM is a checkout of huggingface/pytorch-image-models)
    python train/probe.py warmup --train-script TIMM/train.py --model crelu_resnet20 --seeds 0 1 2 3 4 \
        --out output/warmup --csv docs/design/probe_warmup.csv
    # the tables of docs/REPRODUCTION.md's design section, from the committed CSVs (--check: compare only)
    python train/probe.py report

`train` appends one row per run to `--out` (CSV) and `warmup` one per seed to `--csv`; both skip runs already
recorded, so a grid can be stopped and continued. `--workers` runs pin one process per core. Both print a markdown
table of the results.
"""
import argparse
import os
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Optional, Sequence

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from train.reproduction.probe import (  # noqa: E402
    WARMUP_FIELDS, append_probe_row, probe_run, probe_summary, read_probe_csv, warmup_command, warmup_row,
    warmup_summary, warmup_variant,
)
from train.reproduction.study import replace_blocks  # noqa: E402
from timm_nf.training.checkpoint import atomic_write_text  # noqa: E402

DESIGN = REPO / 'docs' / 'design'  # the committed probe CSVs
DOC = REPO / 'docs' / 'REPRODUCTION.md'
WARMUP_CSV = 'probe_warmup.csv'



def _pin_worker(cores) -> None:
    import torch
    core = cores.get()
    if hasattr(os, 'sched_setaffinity'):
        os.sched_setaffinity(0, {core})
    torch.set_num_threads(1)


def cmd_train(args) -> int:
    done = {(r['variant'], int(r['seed']), float(r['lr'])) for r in read_probe_csv(args.out)}
    jobs = [(v, s, lr) for v in args.variants for lr in args.lrs for s in args.seeds if (v, s, lr) not in done]
    if jobs:
        import multiprocessing as mp
        cores = mp.Manager().Queue()
        available = sorted(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else list(range(args.workers))
        for i in range(args.workers):
            cores.put(available[i % len(available)])
        with ProcessPoolExecutor(args.workers, initializer=_pin_worker, initargs=(cores,)) as pool:
            futures = {pool.submit(probe_run, v, s, lr, epochs=args.epochs): (v, s, lr) for v, s, lr in jobs}
            for f in as_completed(futures):
                row = f.result()
                append_probe_row(args.out, row)
                print(f"{row['variant']} seed {row['seed']} lr {row['lr']:g}: logit std {row['logit_std_init']}, "
                      f"top-1 {row['val_top1']}" + (f", NaN at update {row['nan_step']}" if row['nan_step'] else ''),
                      flush=True)
    wanted = set(args.variants)
    print('\n'.join(probe_summary(r for r in read_probe_csv(args.out) if r['variant'] in wanted)))
    return 0


def cmd_warmup(args) -> int:
    data = args.data_dir
    if not os.path.isdir(data):
        from timm_nf.data.digits import export_image_folder
        print(f'writing the digits image folder {data}: {export_image_folder(data)}')
    variant = warmup_variant(args.model, args.model_kwargs, args.reset_momentum, args.extra)
    done = {int(r['seed']) for r in read_probe_csv(args.csv) if r['variant'] == variant}
    out = Path(args.out)
    for seed in args.seeds:
        if seed in done:
            continue
        summary = out / f'seed{seed}' / 'summary.csv'
        cmd = warmup_command(args.train_script, data, args.model, seed, str(out), args.model_kwargs, args.extra,
                             reset_momentum=args.reset_momentum)
        out.mkdir(parents=True, exist_ok=True)
        with open(out / f'seed{seed}.log', 'w') as log:
            log.write('$ ' + ' '.join(cmd) + '\n')
            log.flush()
            # timm's train.py imports --device-modules by name: train.reproduction.momentum_reset is in this checkout
            env = dict(os.environ, OMP_NUM_THREADS=str(args.threads),
                       PYTHONPATH=os.pathsep.join(p for p in (str(REPO), os.environ.get('PYTHONPATH', '')) if p))
            status = subprocess.call(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO)
        if status != 0 or not summary.exists():
            print(f'error: seed {seed}: {Path(args.train_script).name} exited with {status}; see {out}/seed{seed}.log',
                  file=sys.stderr)
            return 1
        row = warmup_row(variant, seed, str(summary))
        append_probe_row(args.csv, row, WARMUP_FIELDS)
        print(f"{variant} seed {seed}: final validation top-1 {row['val_top1']:.2f}", flush=True)
    print('\n'.join(warmup_summary(r for r in read_probe_csv(args.csv) if r['variant'] == variant)))
    return 0


def cmd_momentum(args) -> int:
    import json
    from train.reproduction.probe import warm_buffer_updates
    print(json.dumps(warm_buffer_updates(args.model, seed=args.seed), indent=1))
    return 0


def design_blocks(design: Path) -> dict:
    """The generated tables of the design section: one per committed probe CSV, named after the file."""
    blocks = {}
    for path in sorted(design.glob('probe_*.csv')):
        rows = read_probe_csv(str(path))
        blocks[path.stem] = warmup_summary(rows) if path.name == WARMUP_CSV else probe_summary(rows)
    return blocks


def cmd_report(args) -> int:
    text = args.doc.read_text()
    try:
        new = replace_blocks(text, design_blocks(args.design), args.doc, prefix='design')
    except ValueError as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    if args.check:
        if new != text:
            print(f'error: the design tables of {args.doc} are out of date with {args.design}; '
                  f'run python train/probe.py report', file=sys.stderr)
            return 1
        print(f'{args.doc} matches {args.design}')
        return 0
    atomic_write_text(str(args.doc), new)
    print(f'wrote the design tables of {args.doc}')
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    sub = parser.add_subparsers(dest='command', required=True)
    p = sub.add_parser('train', help='short constant-lr training runs of model variants on the digits')
    p.add_argument('--variants', nargs='+', required=True, help="model specs NAME[:key=value,...]")
    p.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    p.add_argument('--lrs', type=float, nargs='+', default=[0.025, 0.00625])
    p.add_argument('--epochs', type=int, default=4)
    p.add_argument('--workers', type=int, default=2, help='runs at once, one core each')
    p.add_argument('--out', required=True, help='CSV of the runs (appended; finished runs are skipped)')
    p.set_defaults(func=cmd_train)
    p = sub.add_parser('warmup', help="timm's train.py (or ours) with a per-epoch warmup, several seeds")
    p.add_argument('--train-script', required=True, help="timm's train.py from a timm checkout, or train/train.py")
    p.add_argument('--model', required=True)
    p.add_argument('--model-kwargs', nargs='*', default=[], help='key=value ... passed as --model-kwargs')
    p.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2, 3, 4])
    p.add_argument('--data-dir', default=str(REPO / 'output' / 'digits_folder'),
                   help='digits image folder (written when missing)')
    p.add_argument('--threads', type=int, default=1, help='torch threads per run')
    p.add_argument('--reset-momentum', action='store_true',
                   help="diagnostic (timm's train.py): clear the momentum buffers when the warmup ends")
    p.add_argument('--out', required=True, help='output root: <out>/seed<S>/ per run')
    p.add_argument('--csv', default=str(DESIGN / WARMUP_CSV), help='CSV the results are appended to')
    p.add_argument('extra', nargs=argparse.REMAINDER, help='after --: more train.py flags')
    p.set_defaults(func=cmd_warmup)
    p = sub.add_parser('momentum', help="the classifier's first full-lr updates after a warmup epoch at 1e-5, with "
                                        'and without the momentum buffer it left')
    p.add_argument('--model', default='crelu_resnet20', help='model spec NAME[:key=value,...]')
    p.add_argument('--seed', type=int, default=1)
    p.set_defaults(func=cmd_momentum)
    p = sub.add_parser('report', help="write the design tables of docs/REPRODUCTION.md from the probe CSVs")
    p.add_argument('--design', type=Path, default=DESIGN, help=f'probe CSVs (default: {DESIGN})')
    p.add_argument('--doc', type=Path, default=DOC, help=f'document with the markers (default: {DOC})')
    p.add_argument('--check', action='store_true', help='only compare; exit 1 when the tables are out of date')
    p.set_defaults(func=cmd_report)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, 'extra', None) and args.extra[0] == '--':
        args.extra = args.extra[1:]
    return args.func(args)


if __name__ == '__main__':
    sys.exit(main())
