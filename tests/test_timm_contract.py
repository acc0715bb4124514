"""timm's own model test suite (tests/test_models.py of the pinned timm sdist) run against our models.

The file is fetched from the package registry by tests/timm_contract/run_timm_model_tests.sh and never copied into
this repository. About 10 s per model on 2 CPU cores, so CI runs one model per family and layout (CIFAR basic,
ImageNet basic, ImageNet bottleneck, NF-RegNet); run the script with any -k expression for the rest, e.g.
`tests/timm_contract/run_timm_model_tests.sh 'crelu_resnet or normprop_resnet or nf_resnet or nf_regnet'`.
"""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import timm

import timm_nf  # noqa: F401  (registers the models, and their pretrained tags)

CONTRACT_MODELS = [
    'crelu_resnet20', 'crelu_resnet50', 'normprop_resnet20', 'normprop_resnet18', 'nf_resnet20', 'nf_resnet18',
    'nf_regnet_b0_crelu',
]
SCRIPT = Path(__file__).parent / 'timm_contract' / 'run_timm_model_tests.sh'


@pytest.mark.timm_contract
def test_timm_model_contract():
    # '-NAME]' / '-NAME.' match exactly NAME's test ids (test_x[1-NAME] and cfg tests test_x[1-NAME.tag]).
    expr = ' or '.join(f'-{name}] or -{name}.' for name in CONTRACT_MODELS)
    # one thread: the suite's other xdist worker has the machine's other core (see tests/conftest.py)
    env = dict(os.environ, PYTHON=sys.executable, OMP_NUM_THREADS='1')
    out = subprocess.run(['bash', str(SCRIPT), expr], capture_output=True, text=True, env=env)
    summary = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ''
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    passed = int(re.search(r'(\d+) passed', summary).group(1))
    # forward, backward, torchscript, features, fx forward, fx backward, and default_cfgs once per pretrained cfg
    # (the architecture's own, untagged and without weights, plus each published tag): none may be skipped or
    # deselected by a filter.
    n_cfgs = sum(len(timm.list_models(name, include_tags=True)) for name in CONTRACT_MODELS)
    assert n_cfgs == len(CONTRACT_MODELS) + sum(len(timm.list_pretrained(name)) for name in CONTRACT_MODELS)
    assert passed == 6 * len(CONTRACT_MODELS) + n_cfgs, summary
    assert 'failed' not in summary and 'skipped' not in summary, summary
