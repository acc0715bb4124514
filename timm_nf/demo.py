"""Build one model of each family and print its name, parameters, GMACs and output shape.

Usage: ``python -m timm_nf.demo [NAME ...]``
"""
import sys
from typing import List, Optional

import timm
import torch

import timm_nf  # noqa: F401  (registers the models)
from timm_nf.profile import model_stats

DEFAULT_MODELS = ['crelu_resnet20', 'normprop_resnet56', 'nf_resnet20', 'nf_regnet_b0_crelu', 'crelu_resnet50']


def main(argv: Optional[List[str]] = None) -> int:
    names = (argv if argv is not None else sys.argv[1:]) or DEFAULT_MODELS
    print(f'{"model":<24} {"params (M)":>10} {"GMACs":>8} {"input":>10} {"output":>10}')
    for name in names:
        stats = model_stats(name)
        model = timm.create_model(name).eval()  # a real forward too, so the printed shape is what you get
        with torch.no_grad():
            out = model(torch.randn(1, 3, stats.img_size, stats.img_size))
        print(f'{name:<24} {stats.params / 1e6:>10.3f} {stats.gmacs:>8.3f} {stats.img_size:>10} '
              f'{str(tuple(out.shape)):>10}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
