"""Command line: signal propagation plots and residual diagnostics for any timm model.

    python -m timm_nf.analysis spp --model nf_resnet56 --compare 'nf_resnet56+unscaled' --unit-gains --out runs/spp
    python -m timm_nf.analysis delta --model 'crelu_resnet110:act_layer=relu,norm=none' \\
        --compare 'crelu_resnet110:act_layer=relu' --out runs/delta
    python -m timm_nf.analysis activations --model resnet50 --img-size 64 --out runs/act
    python -m timm_nf.analysis coherence --model resnet50 --pretrained --out runs/coh

Each writes ``<analysis>.csv`` and ``<analysis>.png`` into ``--out`` and appends the command to
``<out>/commands.txt``. Model specs are ``NAME[:key=value,...][+unscaled]`` (see `timm_nf.analysis.inputs`).
"""
import argparse
import shlex
import sys
import os
from typing import List, Optional

from .adapters import NoResidualBlocksError
from .inputs import AnalysisError
from .measure import ForwardError
from .runner import ANALYSES, run_analysis, save_analysis

_HELP = {
    'spp': 'signal propagation plot (Brock et al. 2021): channel mean^2, variance, residual variance per block',
    'delta': 'residual differences per block (Shang et al. 2017, Fig. 2)',
    'activations': 'mean / non-zero ratio of the features entering the classifier (Shang et al. 2017, Table 1)',
    'coherence': 'filter coherence of every conv (Shang et al. 2017, Fig. 3)',
}


def _positive(text: str) -> int:
    v = int(text)
    if v < 1:
        raise argparse.ArgumentTypeError(f'must be a positive integer, got {v}')
    return v


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='python -m timm_nf.analysis', description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest='analysis', required=True, metavar='{' + ','.join(ANALYSES) + '}')
    for kind in ANALYSES:
        p = sub.add_parser(kind, help=_HELP[kind], description=_HELP[kind])
        p.add_argument('--model', required=True, help='model spec NAME[:key=value,...][+unscaled]')
        weights = p.add_mutually_exclusive_group()
        weights.add_argument('--checkpoint', default=None, help='checkpoint for --model (compared models stay at init)')
        weights.add_argument('--pretrained', action='store_true', help="timm's pretrained weights for every model")
        p.add_argument('--compare', nargs='+', default=[], metavar='NAME', help='more model specs to overlay')
        p.add_argument('--img-size', type=_positive, default=None, help="square input size (default: model's cfg)")
        p.add_argument('--batch-size', type=_positive, default=8, help='images per batch (default 8)')
        p.add_argument('--num-batches', type=_positive, default=1, help='batches to accumulate (default 1)')
        p.add_argument('--unit-gains', action='store_true',
                       help='set zero-initialized residual gains (skip gains, last BN/WS gains) to 1, as the SPPs '
                            'of Brock et al. assume')
        p.add_argument('--dataset', default=None,
                       help="real images instead of N(0,1) noise: 'digits' or any timm dataset name (as in train.py)")
        p.add_argument('--data-dir', default=None, help='dataset root (as in train.py)')
        p.add_argument('--split', default='validation', help="dataset split (default 'validation')")
        p.add_argument('--running-stats', action='store_true',
                       help='BatchNorm in eval mode with its running statistics; the default uses batch statistics, '
                            'because at init the running stats (mean 0, var 1) do not normalize at all')
        p.add_argument('--seed', type=int, default=0, help='seed of model init and inputs (default 0)')
        p.add_argument('--title', default=None, help='figure title')
        p.add_argument('--no-progress', action='store_true', help='no progress bar')
        p.add_argument('--out', required=True, help='output directory')
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    if (args.data_dir or args.split != 'validation') and not args.dataset:
        print('error: --data-dir/--split need --dataset (without it the input is N(0,1) noise)', file=sys.stderr)
        return 2
    try:
        rows = run_analysis(
            args.analysis, [args.model] + args.compare, checkpoint=args.checkpoint, pretrained=args.pretrained,
            img_size=args.img_size, batch_size=args.batch_size, num_batches=args.num_batches,
            unit_gains=args.unit_gains, dataset=args.dataset, data_dir=args.data_dir, split=args.split,
            batch_stats=not args.running_stats, seed=args.seed, progress=not args.no_progress,
            log=lambda s: print(s, flush=True))
    except (AnalysisError, NoResidualBlocksError, ForwardError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    paths = save_analysis(args.analysis, rows, args.out, title=args.title)
    with open(os.path.join(args.out, 'commands.txt'), 'a') as f:
        argv_used = sys.argv[1:] if argv is None else argv
        f.write('python -m timm_nf.analysis ' + ' '.join(shlex.quote(a) for a in argv_used) + '\n')
    print('wrote ' + ', '.join(paths))
    return 0


if __name__ == '__main__':
    sys.exit(main())
