#!/usr/bin/env python3
"""Train timm (and timm-nf) image classifiers, on one CPU or on many GPUs with torchrun.

The flags are timm's train.py flags, with the same names and meaning (timm's train.py is not in timm's wheel).
Additions: `--dataset digits` (embedded scikit-learn digits, no download), `--dataset fashion_mnist` (the IDX files
of Debian's dataset-fashion-mnist or --data-dir, no download), `--train-crop-mode pad` with
`--crop-padding` (CIFAR pad-and-random-crop), `--resume auto` (continue `<output>/<experiment>` in place).

Examples:
    # the digits job (2 CPU cores, a few minutes)
    python train/train.py --config train/recipes/digits.yaml
    # Fashion-MNIST from Debian's package (apt-get install dataset-fashion-mnist)
    python train/train.py --config train/recipes/fashion_mnist.yaml
    # one GPU server, 8 GPUs
    torchrun --nproc_per_node=8 train/train.py --config train/recipes/nf_regnet_imagenet.yaml \
        --model nf_regnet_b0_crelu --data-dir /data/imagenet
    # two nodes (run on each node, same rendezvous endpoint)
    torchrun --nnodes=2 --nproc_per_node=8 --rdzv_id=job1 --rdzv_backend=c10d --rdzv_endpoint=HOST:29500 \
        train/train.py --config ... --data-dir /data/imagenet

Outputs go to `<output>/<experiment>/` (rank 0 only): args.yaml, summary.csv, train.log, last.pth.tar,
model_best.pth.tar and the best `--checkpoint-hist` checkpoint-<epoch>.pth.tar files. args.yaml (and the
checkpoints' `args`) name files relative to this repository's root; a path outside it is recorded as null.
Exit status: 0 done, 1 bad input or a fault (one `error: ...` line), 3 stopped on a NaN / infinite loss.
"""
import argparse
import importlib
import logging
import os
import sys

# The repository this script lives in: args.yaml names files relative to it (see `portable_run_args`).
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

try:
    import timm_nf  # registers the timm-nf models with timm
except ImportError:
    # Running from a source checkout without `pip install -e .`: use the repository this script lives in.
    sys.path.insert(0, REPO_ROOT)
    import timm_nf  # noqa: F401

from timm.utils import ParseKwargs, setup_default_logging

from timm_nf.data import DatasetError
from timm_nf.training import NonFiniteLossError, RunError, parse_args_with_config, run_training
from timm_nf.training.config import portable_run_args

_logger = logging.getLogger('train')


def _add_dataset_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group('Dataset parameters')
    parser.add_argument('data', nargs='?', metavar='DIR', const=None,
                        help='path to dataset (positional is deprecated, as in timm; use --data-dir)')
    group.add_argument('--data-dir', metavar='DIR',
                       help='path to dataset root (not needed for digits; fashion_mnist: default the Debian '
                            'package\'s folder)')
    group.add_argument('--dataset', metavar='NAME', default='',
                       help='"digits" (embedded), "fashion_mnist" (IDX files), "" = image folder / tar (default), '
                            'torch/<name>, hfds/<name>, hfids/<name>, tfds/<name>, wds/<name>')
    group.add_argument('--train-split', metavar='NAME', default='train', help='train split (default: train)')
    group.add_argument('--val-split', metavar='NAME', default='validation',
                       help='validation split, which selects model_best (default: validation; "" for none)')
    group.add_argument('--train-num-samples', type=int, default=None, metavar='N',
                       help='samples in the train split (iterable datasets); digits: use the first N; '
                            'fashion_mnist: a fixed stratified subset of N')
    group.add_argument('--val-num-samples', type=int, default=None, metavar='N',
                       help='samples in the validation split (iterable datasets); digits: use the first N; '
                            'fashion_mnist: a fixed stratified subset of N')
    group.add_argument('--dataset-download', action='store_true', default=False,
                       help='allow download for torch/ and tfds/ datasets that support it (never digits or '
                            'fashion_mnist)')
    group.add_argument('--class-map', default='', type=str, metavar='FILENAME', help='class to index mapping file')


def _add_model_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group('Model parameters')
    group.add_argument('--model', default='resnet50', type=str, metavar='MODEL',
                       help='model name (default: resnet50), e.g. crelu_resnet20, nf_resnet50, nf_regnet_b0_crelu')
    group.add_argument('--pretrained', action='store_true', default=False, help='start from pretrained weights')
    group.add_argument('--initial-checkpoint', default='', type=str, metavar='PATH',
                       help='load these weights into the model after creating it')
    group.add_argument('--resume', default='', type=str, metavar='PATH',
                       help='resume model, optimizer and epoch from this checkpoint; "auto": continue '
                            '<output>/<experiment> from its last checkpoint if it has one, else start it')
    group.add_argument('--no-resume-opt', action='store_true', default=False,
                       help='do not restore the optimizer state when resuming')
    group.add_argument('--num-classes', type=int, default=None, metavar='N',
                       help='number of classes (default: the dataset\'s, else the model\'s)')
    group.add_argument('--gp', default=None, type=str, metavar='POOL', help='global pool type (model default)')
    group.add_argument('--img-size', type=int, default=None, metavar='N', help='image size (model default)')
    group.add_argument('--input-size', default=None, nargs=3, type=int, metavar='N',
                       help='input dimensions (d h w), model default if empty')
    group.add_argument('--crop-pct', default=None, type=float, metavar='N',
                       help='validation center crop fraction (model default)')
    group.add_argument('--mean', type=float, nargs='+', default=None, metavar='MEAN', help='override mean')
    group.add_argument('--std', type=float, nargs='+', default=None, metavar='STD', help='override std')
    group.add_argument('--interpolation', default='', type=str, metavar='NAME', help='resize interpolation')
    group.add_argument('-b', '--batch-size', type=int, default=128, metavar='N',
                       help='batch size per process (default: 128)')
    group.add_argument('-vb', '--validation-batch-size', type=int, default=None, metavar='N',
                       help='validation batch size (default: --batch-size)')
    group.add_argument('--channels-last', action='store_true', default=False, help='channels_last memory layout')
    group.add_argument('--grad-checkpointing', action='store_true', default=False,
                       help='gradient checkpointing through model blocks / stages')
    group.add_argument('--model-kwargs', nargs='*', default={}, action=ParseKwargs,
                       help='extra model keyword arguments, key=value ...')
    group.add_argument('--torchcompile', nargs='?', type=str, default=None, const='inductor',
                       help='torch.compile the model with this backend (default when given: inductor)')
    group.add_argument('--torchcompile-mode', type=str, default=None, help='torch.compile mode')


def _add_device_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group('Device parameters')
    group.add_argument('--device', default=None, type=str,
                       help='device (default: cuda if available, else cpu); under torchrun the local rank picks '
                            'the GPU')
    group.add_argument('--amp', action='store_true', default=False, help='mixed precision (autocast)')
    group.add_argument('--amp-dtype', default='float16', type=str, choices=('float16', 'bfloat16'),
                       help='AMP dtype (default: float16; loss scaling only for float16 on CUDA; bfloat16 has '
                            'float32\'s range, for models whose activations approach float16\'s 65504)')
    group.add_argument('--no-ddp-bb', action='store_true', default=False, help='DDP: do not broadcast buffers')
    group.add_argument('--synchronize-step', action='store_true', default=False,
                       help='torch.cuda.synchronize() after each step')
    group.add_argument('--cudnn-benchmark', action=argparse.BooleanOptionalAction, default=True,
                       help='cuDNN autotuning on CUDA, as in timm')
    group.add_argument('--deterministic', action='store_true', default=False,
                       help='deterministic algorithms (cuDNN and PyTorch ops that have one; others warn), no cuDNN '
                            'autotuning: for reruns that must agree on CUDA')
    group.add_argument('--local_rank', '--local-rank', default=0, type=int, help=argparse.SUPPRESS)
    group.add_argument('--device-modules', default=None, type=str, nargs='+',
                       help='modules to import first (device backends, model plugins)')


def _add_optimizer_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group('Optimizer parameters')
    group.add_argument('--opt', default='sgd', type=str, metavar='OPTIMIZER', help='optimizer (default: sgd)')
    group.add_argument('--opt-eps', default=None, type=float, metavar='EPSILON', help='optimizer epsilon')
    group.add_argument('--opt-betas', default=None, type=float, nargs='+', metavar='BETA', help='optimizer betas')
    group.add_argument('--momentum', type=float, default=0.9, metavar='M', help='momentum (default: 0.9)')
    group.add_argument('--weight-decay', type=float, default=2e-5, help='weight decay (default: 2e-5)')
    group.add_argument('--clip-grad', type=float, default=None, metavar='NORM',
                       help='gradient clipping threshold (default: none)')
    group.add_argument('--clip-mode', type=str, default='norm', choices=('norm', 'value', 'agc'),
                       help='clipping mode: norm, value or agc (adaptive, classifier excluded)')
    group.add_argument('--layer-decay', type=float, default=None, help='layer-wise lr decay')
    group.add_argument('--opt-kwargs', nargs='*', default={}, action=ParseKwargs, help='extra optimizer kwargs')


def _add_schedule_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group('Learning rate schedule parameters')
    group.add_argument('--sched', type=str, default='cosine', metavar='SCHEDULER',
                       help='LR scheduler: cosine, step, multistep, plateau, poly, tanh, ... (default: cosine)')
    group.add_argument('--sched-on-updates', action='store_true', default=False,
                       help='step the scheduler every update instead of every epoch')
    group.add_argument('--lr', type=float, default=None, metavar='LR',
                       help='learning rate (default: --lr-base scaled by the global batch size)')
    group.add_argument('--lr-base', type=float, default=0.1, metavar='LR',
                       help='base lr: lr = lr_base * global_batch_size / lr_base_size')
    group.add_argument('--lr-base-size', type=int, default=256, metavar='DIV', help='base lr batch size')
    group.add_argument('--lr-base-scale', type=str, default='', metavar='SCALE',
                       help='"linear" or "sqrt" (default: by optimizer)')
    group.add_argument('--lr-noise', type=float, nargs='+', default=None, metavar='pct, pct',
                       help='learning rate noise on/off epoch percentages')
    group.add_argument('--lr-noise-pct', type=float, default=0.67, metavar='PERCENT', help='lr noise limit')
    group.add_argument('--lr-noise-std', type=float, default=1.0, metavar='STDDEV', help='lr noise std-dev')
    group.add_argument('--lr-cycle-mul', type=float, default=1.0, metavar='MULT', help='lr cycle length multiplier')
    group.add_argument('--lr-cycle-decay', type=float, default=0.5, metavar='MULT', help='lr decay per cycle')
    group.add_argument('--lr-cycle-limit', type=int, default=1, metavar='N', help='lr cycle limit')
    group.add_argument('--lr-k-decay', type=float, default=1.0, help='lr k-decay for cosine / poly')
    group.add_argument('--warmup-lr', type=float, default=1e-5, metavar='LR', help='warmup learning rate')
    group.add_argument('--min-lr', type=float, default=0, metavar='LR', help='lower lr bound (default: 0)')
    group.add_argument('--epochs', type=int, default=300, metavar='N', help='epochs to train (default: 300)')
    group.add_argument('--start-epoch', default=None, type=int, metavar='N',
                       help='manual start epoch (overrides the resumed epoch)')
    group.add_argument('--decay-milestones', default=[90, 180, 270], type=int, nargs='+', metavar='MILESTONES',
                       help='epochs where multistep decays the lr')
    group.add_argument('--decay-epochs', type=float, default=90, metavar='N', help='epoch interval of step decay')
    group.add_argument('--warmup-epochs', type=int, default=5, metavar='N', help='LR warmup epochs (default: 5)')
    group.add_argument('--warmup-prefix', action='store_true', default=False,
                       help='warmup epochs come before the decay schedule instead of inside it')
    group.add_argument('--cooldown-epochs', type=int, default=0, metavar='N', help='epochs at min_lr after the cycle')
    group.add_argument('--patience-epochs', type=int, default=10, metavar='N', help='plateau scheduler patience')
    group.add_argument('--decay-rate', '--dr', type=float, default=0.1, metavar='RATE', help='lr decay rate')


def _add_augmentation_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group('Augmentation and regularization parameters')
    group.add_argument('--no-aug', action='store_true', default=False, help='disable all training augmentation')
    group.add_argument('--train-crop-mode', type=str, default=None,
                       help='training crop: rrc (timm default random-resized-crop), rkrc, rkrr, or pad '
                            '(CIFAR: zero-pad --crop-padding pixels, random crop at --img-size)')
    group.add_argument('--crop-padding', type=int, default=4, metavar='PIXELS',
                       help='padding for --train-crop-mode pad (default: 4, as in the CIFAR recipes)')
    group.add_argument('--scale', type=float, nargs='+', default=[0.08, 1.0], metavar='PCT',
                       help='random resize scale range')
    group.add_argument('--ratio', type=float, nargs='+', default=[3. / 4., 4. / 3.], metavar='RATIO',
                       help='random resize aspect ratio range')
    group.add_argument('--hflip', type=float, default=0.5, help='horizontal flip probability (default: 0.5)')
    group.add_argument('--vflip', type=float, default=0., help='vertical flip probability')
    group.add_argument('--color-jitter', type=float, default=0.4, metavar='PCT', help='color jitter factor')
    group.add_argument('--aa', type=str, default=None, metavar='NAME',
                       help='AutoAugment / RandAugment policy, e.g. rand-m9-mstd0.5-inc1')
    group.add_argument('--aug-repeats', type=float, default=0, help='repeated augmentation (distributed only)')
    group.add_argument('--bce-loss', action='store_true', default=False, help='binary cross-entropy loss')
    group.add_argument('--bce-target-thresh', type=float, default=None, help='BCE target binarization threshold')
    group.add_argument('--reprob', type=float, default=0., metavar='PCT', help='random erase probability')
    group.add_argument('--remode', type=str, default='pixel', help='random erase mode (default: pixel)')
    group.add_argument('--recount', type=int, default=1, help='random erase count')
    group.add_argument('--resplit', action='store_true', default=False, help='do not erase the first split')
    group.add_argument('--mixup', type=float, default=0.0, help='mixup alpha, enabled if > 0')
    group.add_argument('--cutmix', type=float, default=0.0, help='cutmix alpha, enabled if > 0')
    group.add_argument('--cutmix-minmax', type=float, nargs='+', default=None, help='cutmix min/max ratio')
    group.add_argument('--mixup-prob', type=float, default=1.0, help='probability of mixup or cutmix per batch')
    group.add_argument('--mixup-switch-prob', type=float, default=0.5,
                       help='probability of cutmix instead of mixup when both are enabled')
    group.add_argument('--mixup-mode', type=str, default='batch', help='mixup mode: batch, pair or elem')
    group.add_argument('--mixup-off-epoch', default=0, type=int, metavar='N', help='turn mixup off at this epoch')
    group.add_argument('--smoothing', type=float, default=0.1, help='label smoothing (default: 0.1)')
    group.add_argument('--train-interpolation', type=str, default='random', help='training interpolation')
    group.add_argument('--drop', type=float, default=0.0, metavar='PCT', help='dropout rate')
    group.add_argument('--drop-path', type=float, default=None, metavar='PCT', help='drop path (stochastic depth)')
    group.add_argument('--drop-block', type=float, default=None, metavar='PCT', help='drop block rate')
    group = parser.add_argument_group('Batch norm parameters')
    group.add_argument('--bn-momentum', type=float, default=None, help='BatchNorm momentum override')
    group.add_argument('--bn-eps', type=float, default=None, help='BatchNorm epsilon override')
    group.add_argument('--sync-bn', action='store_true', help='synchronized BatchNorm (CUDA)')
    group.add_argument('--dist-bn', type=str, default='reduce',
                       help='BatchNorm stats across ranks after each epoch: broadcast, reduce or ""')


def _add_misc_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group('Model exponential moving average parameters')
    group.add_argument('--model-ema', action='store_true', default=False, help='track an EMA of the weights')
    group.add_argument('--model-ema-force-cpu', action='store_true', default=False,
                       help='keep the EMA on CPU (no EMA validation)')
    group.add_argument('--model-ema-decay', type=float, default=0.9998, help='EMA decay (default: 0.9998)')
    group.add_argument('--model-ema-warmup', action='store_true', help='EMA decay warmup')
    group = parser.add_argument_group('Miscellaneous parameters')
    group.add_argument('--seed', type=int, default=42, metavar='S', help='random seed (default: 42)')
    group.add_argument('--worker-seeding', type=str, default='all', help='worker seed mode')
    group.add_argument('--log-interval', type=int, default=50, metavar='N', help='batches between progress lines')
    group.add_argument('--checkpoint-hist', type=int, default=10, metavar='N',
                       help='best checkpoints to keep (default: 10)')
    group.add_argument('-j', '--workers', type=int, default=4, metavar='N', help='data loader workers per process')
    group.add_argument('--pin-mem', action='store_true', default=False, help='pin loader memory')
    group.add_argument('--no-prefetcher', action='store_true', default=False, help='disable the prefetcher')
    group.add_argument('--output', default='', type=str, metavar='PATH',
                       help='output root (default: ./output/train)')
    group.add_argument('--experiment', default='', type=str, metavar='NAME',
                       help='experiment sub-folder (default: <date-time>-<model>-<img size>, or <model>-<img size> '
                            'with --resume auto)')
    group.add_argument('--eval-metric', default='top1', type=str, metavar='EVAL_METRIC',
                       help='metric that selects model_best (default: top1)')


def build_parser() -> argparse.ArgumentParser:
    """The train.py argument parser (timm's flag names)."""
    parser = argparse.ArgumentParser(description='timm-nf training', formatter_class=argparse.HelpFormatter)
    parser.add_argument('-c', '--config', default='', type=str, metavar='FILE',
                        help='YAML file of flag values; command-line flags override it')
    for add in (_add_dataset_args, _add_model_args, _add_device_args, _add_optimizer_args, _add_schedule_args,
                _add_augmentation_args, _add_misc_args):
        add(parser)
    return parser


# Exit status of a run stopped by a NaN / infinite loss, so that a study can tell divergence from bad input (1).
EXIT_NONFINITE_LOSS = 3


def main(argv=None) -> int:
    setup_default_logging()
    parser = build_parser()
    try:
        args, run_args = parse_args_with_config(parser, argv)
        # args.yaml and the checkpoints record the run, not the machine: paths relative to the repository, none
        # of elsewhere (an output folder in /tmp, a data disk).
        run_args = portable_run_args(run_args, REPO_ROOT)
        if args.data and not args.data_dir:
            args.data_dir = args.data
        for module in args.device_modules or ():
            importlib.import_module(module)
        result = run_training(args, run_args)
    except (RunError, DatasetError) as e:
        rank = os.environ.get('RANK')
        prefix = f'[rank {rank}] ' if rank not in (None, '0') else ''
        print(f'{prefix}error: {e}', file=sys.stderr, flush=True)
        return EXIT_NONFINITE_LOSS if isinstance(e, NonFiniteLossError) else 1
    finally:
        import torch.distributed as dist
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
    if result['output_dir']:
        out = result['output_dir']
        best = f"{result['best_metric']:.2f}" if result['best_metric'] is not None else 'n/a'
        print(f"\nDone: {result['num_epochs']} epochs in {result['elapsed'] / 60:.1f} min, "
              f"best {args.eval_metric} {best} (epoch {result['best_epoch']}).")
        print(f'Outputs in {out}/: args.yaml, summary.csv, train.log, last.pth.tar, model_best.pth.tar')
        print(f'Validate: python train/validate.py --model {args.model} --checkpoint {out}/last.pth.tar '
              f'--dataset "{args.dataset}" --split {args.val_split or "validation"}'
              + (f' --data-dir {args.data_dir}' if args.data_dir else ''))
    return 0


if __name__ == '__main__':
    sys.exit(main())
