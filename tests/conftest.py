"""Test-session settings shared by every test module."""
import os

import torch

# One intra-op thread per test process, and per script it starts: `pytest -n 2` runs two workers on this project's
# 2-core machines, and the tests' models are tiny, where torch's default of one thread per core makes the workers'
# thread pools fight for the same cores (measured: tests/test_eval_follows_parameters.py took 78 s with the
# default, 20 s with one thread). Subprocesses inherit the variable; tests that measure threads set their own.
os.environ['OMP_NUM_THREADS'] = '1'
torch.set_num_threads(1)


# Modules of one long test each, started first: xdist hands tests out in collection order, and test_wheel.py (last
# by name, about 45 s on a loaded machine) ended `pytest -n 2` alone on one worker while the other idled.
LONGEST_FIRST = ('tests/test_wheel.py', 'tests/test_timm_contract.py')


def pytest_collection_modifyitems(items):
    items.sort(key=lambda item: item.nodeid.split('::')[0] not in LONGEST_FIRST)  # stable: the rest keep their order
