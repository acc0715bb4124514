"""Diagnostic for `train/probe.py warmup --reset-momentum`: clear SGD momentum buffers when the lr jumps.

Imported for its side effect (`--device-modules timm_nf train.reproduction.momentum_reset` in timm's train.py, with the repository root on
PYTHONPATH): a global
optimizer step pre-hook empties the momentum buffers of a param group whose lr grew more than tenfold since the
previous step, i.e. when a per-epoch warmup from 1e-5 hands over to the full lr. A run with it differs from the
plain run only in the state the optimizer carries across that jump: the test of whether the buffer filled during
the warmup epoch causes the early-training failures (docs/REPRODUCTION.md, design choice 4). Not for training:
repository tooling, deliberately outside the installed package, since importing it changes every optimizer.
"""
from typing import Dict, Tuple

from torch.optim.optimizer import Optimizer, register_optimizer_step_pre_hook

_last_lr: Dict[Tuple[int, int], float] = {}


def _clear_stale_momentum(optimizer: Optimizer, args, kwargs) -> None:
    for i, group in enumerate(optimizer.param_groups):
        previous = _last_lr.get((id(optimizer), i))
        if previous is not None and group['lr'] > 10 * previous:
            for p in group['params']:
                state = optimizer.state.get(p)
                if state and state.get('momentum_buffer') is not None:
                    state['momentum_buffer'] = None  # SGD starts a fresh buffer from the next gradient
            print(f'probe_momentum_reset: lr {previous:g} -> {group["lr"]:g}, momentum buffers cleared', flush=True)
        _last_lr[(id(optimizer), i)] = group['lr']


register_optimizer_step_pre_hook(_clear_stale_momentum)
