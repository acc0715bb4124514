"""Test-session settings shared by every test module."""
import torch

# One intra-op thread per test process: `pytest -n 2` runs two workers on this project's 2-core machines, and the
# tests' models are tiny, where torch's default of one thread per core makes the workers' thread pools fight for the
# same cores (measured: tests/test_eval_follows_parameters.py took 78 s with the default, 20 s with one thread).
# Script subprocesses get OMP_NUM_THREADS=1 from tests/script_helpers.py for the same reason.
torch.set_num_threads(1)
