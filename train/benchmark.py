#!/usr/bin/env python3
"""Benchmark inference / training speed and memory of timm and timm-nf models, alone or side by side.

In the spirit of timm's benchmark.py. Examples (2 CPU cores):

    python train/benchmark.py --model nf_resnet50 --bench infer -b 1
    python train/benchmark.py --bench infer -b 1 --compare nf_resnet50 nf_resnet50@fold nf_resnet50@plain resnet50
    python train/benchmark.py --bench train -b 8 --img-size 160 --compare cfg/nf_resnet50 \\
        'crelu_resnet50:act_layer=relu' --memory
    python train/benchmark.py --markdown results.csv --paired nf_resnet50 nf_resnet50@fold

Model specs are ``NAME[:key=value,...][@fold|@plain]`` (see `timm_nf.benchmark`). With `--compare` the
models run interleaved for `--rounds` rounds and the table reports medians and ratios to the first model.
`--paired A B` adds, per round, A's step time over B's in the same round, summarized over rounds: on a loaded
machine these paired ratios cancel the load that drifts between rounds.
"""
import argparse
import csv
import json
import statistics
import sys
from pathlib import Path
from typing import List, Tuple

import torch

import timm_nf  # noqa: F401  (registers the models)
from timm_nf.benchmark import bench_variants, measure_peak_memory, memory_field, results_to_rows


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description='timm-nf benchmark', formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split('\n\n', 1)[1])
    p.add_argument('--model', '-m', default=None, help='model spec to benchmark')
    p.add_argument('--compare', nargs='+', default=None, metavar='SPEC', help='several specs, interleaved')
    p.add_argument('--bench', default='infer', choices=('infer', 'train', 'both'))
    p.add_argument('-b', '--batch-size', type=int, default=1)
    p.add_argument('--img-size', type=int, default=None, help="image size (default: the model's)")
    p.add_argument('--channels-last', action='store_true')
    p.add_argument('--torchcompile', nargs='?', const='inductor', default=None, help='torch.compile backend')
    p.add_argument('--reparam', action='store_true', help='fold every model for inference (same as SPEC@fold)')
    p.add_argument('--device', default='cpu')
    p.add_argument('--num-warm-iter', type=int, default=3)
    p.add_argument('--num-bench-iter', type=int, default=10, help='steps per model per round')
    p.add_argument('--rounds', type=int, default=5, help='interleaved rounds; the median over rounds is reported')
    p.add_argument('--threads', type=int, default=None, help='torch.set_num_threads (default: torch decides)')
    p.add_argument('--memory', action='store_true',
                   help='also measure peak memory, one subprocess per model: CUDA memory allocated on CUDA, else RSS')
    p.add_argument('--results-file', default=None, help='write results as JSON (.json) or CSV (.csv)')
    p.add_argument('--markdown', nargs='+', default=None, metavar='CSV',
                   help='print results files written by --results-file as markdown tables, then exit')
    p.add_argument('--paired', nargs='+', default=None, metavar='SPEC',
                   help='with --markdown: pairs A B [A B ...]; print the median over rounds of A / B per round')
    args = p.parse_args(argv)
    if not args.model and not args.compare and not args.markdown:
        p.error('give --model SPEC or --compare SPEC [SPEC ...]')
    if args.paired and (not args.markdown or len(args.paired) % 2):
        p.error('--paired takes pairs of specs (A B [A B ...]) and goes with --markdown FILE.csv')
    return args


def markdown_table(path: Path) -> str:
    """A results CSV as a markdown table, ratios against its first row of each bench."""
    with open(path, newline='') as f:
        rows = list(csv.DictReader(f))
    lines = ['| model | bench | batch | px | ms/step (median) | samples/s | vs first | peak RSS MB |',
             '|---|---|---:|---:|---:|---:|---:|---:|']
    base = {}
    for r in rows:
        ms = float(r['step_ms'])
        first = base.setdefault(r['bench'], ms)
        mem = f"{float(r['peak_rss_mb']):.0f}" if r.get('peak_rss_mb') else '-'
        lines.append(f"| `{r['model']}` | {r['bench']} | {r['batch_size']} | {r['img_size']} | {ms:.2f} | "
                     f"{float(r['samples_per_sec']):.2f} | {ms / first:.3f} | {mem} |")
    return '\n'.join(lines)


def paired_ratios(path: Path, pairs: List[Tuple[str, str]]) -> List[str]:
    """For each pair (A, B) of a results CSV: per round, A's step time over B's in the same round; the median and
    quartiles over rounds. Pairs whose models are not both in the file are skipped."""
    with open(path, newline='') as f:
        rounds = {(r['model'], r['bench']): [float(t) for t in r['step_ms_all'].split()] for r in csv.DictReader(f)}
    lines = []
    for num, den in pairs:
        for bench in ('infer', 'train'):
            if (num, bench) in rounds and (den, bench) in rounds:
                ratios = [a / b for a, b in zip(rounds[num, bench], rounds[den, bench])]
                q1, med, q3 = statistics.quantiles(ratios, n=4, method='inclusive') if len(ratios) > 1 else ratios * 3
                lines.append(f'- `{num}` / `{den}` ({bench}): {med:.3f} (quartiles {q1:.2f}-{q3:.2f}, '
                             f'{len(ratios)} rounds)')
    return lines


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.markdown:
        pairs = list(zip(args.paired[::2], args.paired[1::2])) if args.paired else []
        for path in args.markdown:
            print(f'{path}:\n\n{markdown_table(Path(path))}\n')
            lines = paired_ratios(Path(path), pairs)
            if lines:
                print('Paired ratios:\n\n' + '\n'.join(lines) + '\n')
        return 0
    if args.threads:
        torch.set_num_threads(args.threads)
    specs = args.compare or [args.model]
    if args.reparam:
        specs = [s if '@' in s else s + '@fold' for s in specs]
    benches = ('infer', 'train') if args.bench == 'both' else (args.bench,)
    results = []
    for bench in benches:
        try:
            res = bench_variants(
                specs, bench, args.batch_size, args.img_size, args.device, args.channels_last, args.torchcompile,
                args.num_warm_iter, args.num_bench_iter, args.rounds, progress=lambda m: print(m, file=sys.stderr))
        except (ValueError, RuntimeError) as e:
            print(f'error: {e}', file=sys.stderr)
            return 2
        field = memory_field(args.device)  # CUDA: device memory allocated; CPU: host RSS
        if args.memory:
            for r in res:
                setattr(r, field, measure_peak_memory(
                    r.model, bench, args.batch_size, args.img_size, args.device, threads=args.threads))
        base = res[0].step_ms
        print(f'\n{bench}: batch {args.batch_size}, {torch.get_num_threads()} threads, median of {args.rounds} '
              f'interleaved rounds x {args.num_bench_iter} steps')
        mem_header = 'CUDA MB' if field == 'peak_cuda_mb' else 'RSS MB'
        print(f'{"model":<44} {"ms/step":>9} {"samples/s":>10} {"vs first":>9} {"peak " + mem_header:>12}')
        for r in res:
            peak = getattr(r, field)
            mem = f'{peak:.0f}' if peak else '-'
            print(f'{r.model:<44} {r.step_ms:>9.2f} {r.samples_per_sec:>10.2f} {r.step_ms / base:>8.3f}x {mem:>12}')
        results += res
    if args.results_file:
        rows = results_to_rows(results)
        path = Path(args.results_file)
        tmp = path.with_name(path.name + '.tmp')
        if path.suffix == '.csv':
            with open(tmp, 'w', newline='') as f:
                writer = csv.DictWriter(f, fieldnames=list(rows[0]))
                writer.writeheader()
                writer.writerows(rows)
        else:
            tmp.write_text(json.dumps(rows if len(rows) > 1 else rows[0], indent=2))
        tmp.replace(path)
        print(f'results written to {path}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
