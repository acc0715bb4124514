#!/usr/bin/env python3
"""Validate timm (and timm-nf) models: ImageNet val in the standard folder layout, the digits split,
Fashion-MNIST's validation or official test split, any dataset timm reads. Flags as in timm's validate.py;
results as timm writes them plus `model_args`, `checkpoint`, `checkpoint_sha256`, `dataset`, `split` and
`num_images`. `checkpoint` is relative to this repository's root, or null for a checkpoint outside it.

Examples:
    python train/validate.py --checkpoint output/digits/crelu_resnet20/last.pth.tar --dataset digits
    python train/validate.py --checkpoint output/fashion_mnist/crelu_resnet20/last.pth.tar --dataset fashion_mnist
        --split test
    python train/validate.py --model nf_regnet_b0_crelu --checkpoint model_best.pth.tar \
        --data-dir /data/imagenet --split validation --results-file results.json --results-format json
"""
import argparse
import importlib
import json
import logging
import os
import sys

# The repository this script lives in: results name files relative to it (see `portable_results`).
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

try:
    import timm_nf  # registers the timm-nf models with timm
except ImportError:
    sys.path.insert(0, REPO_ROOT)
    import timm_nf  # noqa: F401

from timm.utils import ParseKwargs, setup_default_logging

from timm_nf.data import DatasetError
from timm_nf.training import RunError
from timm_nf.training.validation import portable_results, resolve_model_checkpoints, validate_one, write_results

_logger = logging.getLogger('validate')


def build_parser() -> argparse.ArgumentParser:
    """The validate.py argument parser (timm's flag names)."""
    parser = argparse.ArgumentParser(description='timm-nf validation')
    parser.add_argument('data', nargs='?', metavar='DIR', const=None,
                        help='path to dataset (positional is deprecated, as in timm; use --data-dir)')
    parser.add_argument('--data-dir', metavar='DIR',
                        help='dataset root (not needed for digits; fashion_mnist: default the Debian package\'s '
                             'folder)')
    parser.add_argument('--dataset', metavar='NAME', default='',
                        help='"digits", "fashion_mnist", "" = image folder / tar (default), torch/<name>, '
                             'hfds/<name>, ...')
    parser.add_argument('--split', metavar='NAME', default='validation',
                        help='split (default: validation; fashion_mnist also test, the official 10k)')
    parser.add_argument('--num-samples', default=None, type=int, metavar='N',
                        help='samples in the split (iterable datasets); digits: use the first N; fashion_mnist: '
                             'a fixed stratified subset of N')
    parser.add_argument('--dataset-download', action='store_true', default=False,
                        help='allow download for torch/ and tfds/ datasets')
    parser.add_argument('--class-map', default='', type=str, metavar='FILENAME', help='class to index mapping file')
    parser.add_argument('--model', '-m', metavar='NAME', default='',
                        help='model name, wildcard over pretrained models, or a file of names '
                             '(default: the model recorded in --checkpoint)')
    parser.add_argument('--pretrained', action='store_true', default=False,
                        help='use pretrained weights (default when no --checkpoint)')
    parser.add_argument('--checkpoint', default='', type=str, metavar='PATH',
                        help='checkpoint file, or a directory of checkpoints')
    parser.add_argument('--use-ema', action='store_true', default=False, help='use the EMA weights if present')
    parser.add_argument('--model-kwargs', nargs='*', default={}, action=ParseKwargs, help='model kwargs')
    parser.add_argument('--num-classes', type=int, default=None, help='number of classes (default: checkpoint / '
                                                                      'model)')
    parser.add_argument('-j', '--workers', default=4, type=int, metavar='N', help='data loader workers')
    parser.add_argument('-b', '--batch-size', default=256, type=int, metavar='N', help='batch size (default: 256)')
    parser.add_argument('--img-size', default=None, type=int, metavar='N', help='image size (default: checkpoint / '
                                                                                  'model)')
    parser.add_argument('--input-size', default=None, nargs=3, type=int, metavar='N', help='input size (d h w)')
    parser.add_argument('--use-train-size', action='store_true', default=False,
                        help='use the train input size even when the model has a test size')
    parser.add_argument('--crop-pct', default=None, type=float, metavar='N', help='center crop fraction')
    parser.add_argument('--crop-mode', default=None, type=str, help='crop mode: center, squash, border')
    parser.add_argument('--mean', type=float, nargs='+', default=None, metavar='MEAN', help='override mean')
    parser.add_argument('--std', type=float, nargs='+', default=None, metavar='STD', help='override std')
    parser.add_argument('--interpolation', default='', type=str, metavar='NAME', help='resize interpolation')
    parser.add_argument('--log-freq', default=10, type=int, metavar='N', help='batches between log lines')
    parser.add_argument('--no-prefetcher', action='store_true', default=False, help='disable the prefetcher')
    parser.add_argument('--pin-mem', action='store_true', default=False, help='pin loader memory')
    parser.add_argument('--channels-last', action='store_true', default=False, help='channels_last layout')
    parser.add_argument('--device', default=None, type=str, help='device (default: cuda if available, else cpu)')
    parser.add_argument('--amp', action='store_true', default=False, help='mixed precision')
    parser.add_argument('--amp-dtype', default='float16', type=str, choices=('float16', 'bfloat16'),
                        help='AMP dtype')
    parser.add_argument('--reparam', action='store_true', default=False,
                        help='reparameterize the model (timm reparameterize_model) before validating')
    parser.add_argument('--torchcompile', nargs='?', type=str, default=None, const='inductor',
                        help='torch.compile with this backend (default when given: inductor)')
    parser.add_argument('--torchcompile-mode', type=str, default=None, help='torch.compile mode')
    parser.add_argument('--results-file', default='', type=str, metavar='FILENAME', help='write results here')
    parser.add_argument('--results-format', default='csv', type=str, choices=('csv', 'json'),
                        help='results file format (default: csv)')
    parser.add_argument('--device-modules', default=None, type=str, nargs='+', help='modules to import first')
    return parser


def main(argv=None) -> int:
    setup_default_logging()
    args = build_parser().parse_args(argv)
    if args.data and not args.data_dir:
        args.data_dir = args.data
    try:
        for module in args.device_modules or ():
            importlib.import_module(module)
        pairs = resolve_model_checkpoints(args.model, args.checkpoint)
        if len(pairs) == 1:
            results = validate_one(args, *pairs[0])
        else:
            _logger.info(f'Validating {len(pairs)} model / checkpoint pairs.')
            results = []
            for model_name, checkpoint in pairs:
                try:
                    results.append(validate_one(args, model_name, checkpoint))
                except (RunError, DatasetError) as e:
                    # As timm's bulk mode: report and go on with the other models.
                    _logger.error(f'{model_name or checkpoint}: {e}')
            if not results:
                raise RunError('no model validated successfully')
            results = sorted(results, key=lambda r: r['top1'], reverse=True)
        results = portable_results(results, REPO_ROOT)
        if args.results_file:
            write_results(args.results_file, results, args.results_format)
    except (RunError, DatasetError) as e:
        print(f'error: {e}', file=sys.stderr, flush=True)
        return 1
    print(f'--result\n{json.dumps(results, indent=4)}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
