"""The training step and run settings that differ on GPUs, measured in-process on CPU with tiny real models.

* Host syncs: on CUDA, reading a tensor's value (`.item()`, `.tolist()`, `bool(t)`, ...) makes the host wait for
  the device. A `TorchFunctionMode` counts those calls inside each training step; CPU has no launch queue to drain,
  but the calls are the same ones.
* The float16 loss scaler (CUDA only in a run) is forced on here: timm's `NativeScaler` takes a device.
"""
import random
from types import SimpleNamespace
from typing import Callable, Iterator, List, Tuple

import pytest
import timm
import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
from timm.data import create_loader, resolve_data_config
from timm.utils import NativeScaler
from torch.overrides import TorchFunctionMode

import timm_nf  # noqa: F401  (registers the models)
from timm_nf.data import create_dataset
from timm_nf.training import RunClock, train_one_epoch
from timm_nf.training.backends import (
    FLOAT16_MAX, configure_backends, float16_overflow_warning, peak_activation,
)

# Calls that copy a value from the device to the host (a sync on CUDA).
SYNC_CALLS = {'item', 'tolist', '__bool__', '__float__', '__int__', '__index__', '__format__', '__repr__', 'numpy',
              '__array__', 'cpu'}


class HostSyncCounter(TorchFunctionMode):
    """Counts tensor calls that would make the host wait for a CUDA device."""

    def __init__(self):
        super().__init__()
        self.count = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if getattr(func, '__name__', '') in SYNC_CALLS:
            self.count += 1
        return func(*args, **(kwargs or {}))


class MarkedLoader:
    """A list of batches that records the sync count each time the next step starts (and once at the end)."""

    def __init__(self, batches: List[Tuple[torch.Tensor, torch.Tensor]], counter: HostSyncCounter):
        self.batches, self.counter, self.marks = batches, counter, []

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[Tuple[torch.Tensor, torch.Tensor]]:
        for batch in self.batches:
            self.marks.append(self.counter.count)
            yield batch
        self.marks.append(self.counter.count)


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models are fastest on one thread, and parallel tests stay fair (as for the scripts' subprocesses)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return timm.create_model('crelu_resnet20', depth=8, num_classes=10)


def batches(n: int, batch_size: int = 4, img_size: int = 8, seed: int = 0) -> List[Tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(batch_size, 3, img_size, img_size, generator=g),
             torch.randint(0, 10, (batch_size,), generator=g)) for _ in range(n)]


def run_args(**overrides) -> SimpleNamespace:
    args = dict(mixup_off_epoch=0, prefetcher=False, channels_last=False, clip_grad=None, clip_mode='norm',
                log_interval=4, distributed=False, world_size=1, rank=0, synchronize_step=False)
    args.update(overrides)
    return SimpleNamespace(**args)


def train_epoch(model: nn.Module, loader, args: SimpleNamespace, loss_fn: Callable = F.cross_entropy, **kwargs):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    return train_one_epoch(0, model, loader, optimizer, loss_fn, args, device=torch.device('cpu'),
                           clock=RunClock(len(loader)), num_epochs=1, **kwargs)


def count_step_syncs(model: nn.Module, args: SimpleNamespace, num_batches: int = 6):
    """(syncs per step, syncs between each step's loss and the start of its backward), for one epoch."""
    counter = HostSyncCounter()
    loader = MarkedLoader(batches(num_batches), counter)
    at_loss, at_backward = [], []

    def loss_fn(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        loss = F.cross_entropy(output, target)
        at_loss.append(counter.count)
        loss.register_hook(lambda grad: at_backward.append(counter.count))
        return loss

    with counter:
        train_epoch(model, loader, args, loss_fn=loss_fn)
    per_step = [b - a for a, b in zip(loader.marks, loader.marks[1:])]
    return per_step, [b - a for a, b in zip(at_loss, at_backward)]


def assert_syncs_only_at_log_interval(per_step: List[int], before_backward: List[int], log_interval: int):
    assert before_backward == [0] * len(per_step), before_backward  # nothing waits between forward and backward
    last = len(per_step) - 1
    logged = [i for i in range(len(per_step)) if i % log_interval == 0 or i == last]
    assert [per_step[i] for i in range(len(per_step)) if i not in logged] == [0] * (len(per_step) - len(logged))
    assert all(per_step[i] <= 1 for i in logged), per_step  # one read of the pending losses per progress line


def test_training_step_has_no_host_sync_outside_the_log_interval():
    per_step, before_backward = count_step_syncs(tiny_model(), run_args(log_interval=4))
    assert_syncs_only_at_log_interval(per_step, before_backward, log_interval=4)


def test_ddp_training_step_has_no_host_sync_outside_the_log_interval(tmp_path):
    # A one-process gloo group: the DDP-wrapped model and the all-reduce of the pending losses are the real ones.
    dist.init_process_group('gloo', init_method=f'file://{tmp_path / "store"}', rank=0, world_size=1)
    try:
        model = nn.parallel.DistributedDataParallel(tiny_model())
        per_step, before_backward = count_step_syncs(model, run_args(log_interval=4, distributed=True))
    finally:
        dist.destroy_process_group()
    assert_syncs_only_at_log_interval(per_step, before_backward, log_interval=4)


def test_losses_read_later_are_the_losses_of_each_step():
    """The deferred read gives the same training loss as reading every step: the mean of the per-step losses."""
    data = batches(5)
    model = tiny_model()
    expected = []

    def loss_fn(output, target):
        loss = F.cross_entropy(output, target)
        expected.append(loss.item())
        return loss

    metrics = train_epoch(model, data, run_args(log_interval=3), loss_fn=loss_fn)
    assert metrics['loss'] == pytest.approx(sum(expected) / len(expected), rel=1e-12)


def test_non_finite_loss_stops_within_the_epoch():
    from timm_nf.training import NonFiniteLossError
    data = batches(6)
    data[2] = (torch.full_like(data[2][0], float('nan')), data[2][1])
    with pytest.raises(NonFiniteLossError, match=r'training loss is nan at epoch 0 batch 2; stopped at batch 4'):
        train_epoch(tiny_model(), data, run_args(log_interval=4))


def test_amp_scaler_with_clip_grad_zero_does_not_clip():
    """`--amp --clip-grad 0` with the float16 loss scaler: no clipping, the same update as without the scaler."""
    data = batches(2)
    plain, scaled = tiny_model(), tiny_model()
    train_epoch(plain, data, run_args(clip_grad=None))
    train_epoch(scaled, data, run_args(clip_grad=0.0), loss_scaler=NativeScaler(device='cpu'))
    for (name, p), q in zip(plain.named_parameters(), scaled.parameters()):
        torch.testing.assert_close(q, p, rtol=1e-5, atol=1e-7, msg=name)


def test_configure_backends():
    saved = (torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic,
             torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled())
    try:
        configure_backends(torch.device('cuda', 0))  # only sets flags: no GPU needed
        assert torch.backends.cudnn.benchmark and not torch.are_deterministic_algorithms_enabled()
        configure_backends(torch.device('cuda', 0), cudnn_benchmark=False)
        assert not torch.backends.cudnn.benchmark
        configure_backends(torch.device('cuda', 0), deterministic=True)
        assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
        assert torch.are_deterministic_algorithms_enabled() and torch.is_deterministic_algorithms_warn_only_enabled()
    finally:
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = saved[:2]
        torch.use_deterministic_algorithms(saved[2], warn_only=saved[3])


def digits_loader(model: nn.Module, img_size: int = 32, batch_size: int = 16):
    dataset = create_dataset('digits', split='validation', is_training=False)
    cfg = resolve_data_config({'img_size': img_size, 'crop_pct': 1.0}, model=model)
    return create_loader(dataset, input_size=cfg['input_size'], batch_size=batch_size, is_training=False,
                         use_prefetcher=False, num_workers=0, mean=cfg['mean'], std=cfg['std'],
                         crop_pct=cfg['crop_pct'], interpolation=cfg['interpolation'])


@pytest.mark.parametrize('model_name, warns', [('normprop_resnet110_v1', True), ('crelu_resnet20', False)])
def test_float16_overflow_warning(model_name: str, warns: bool):
    torch.manual_seed(0)
    model = timm.create_model(model_name, num_classes=10).eval()
    loader = digits_loader(model)
    buffers = [b.clone() for b in model.buffers()]
    rng, py_rng = torch.get_rng_state(), random.getstate()

    peak = peak_activation(model, loader, torch.device('cpu'))
    warning = float16_overflow_warning(model_name, peak)
    if warns:
        assert peak > FLOAT16_MAX / 16, peak  # NormProp v1 at depth 110: about 1e4 on the digits at 32 px
        assert '\n' not in warning and model_name in warning and '--amp-dtype bfloat16' in warning
    else:
        assert peak < 100 and warning is None, peak
    # The run that follows is unchanged: BatchNorm statistics, mode and random streams as they were.
    assert all(torch.equal(a, b) for a, b in zip(buffers, model.buffers()))
    assert not model.training
    assert torch.equal(torch.get_rng_state(), rng) and random.getstate() == py_rng
