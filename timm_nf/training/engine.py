"""One training epoch and one evaluation pass, built from timm's pieces (meters, accuracy, clipping, EMA).

The loops follow timm's train.py semantics (per-update LR scheduling, AGC leaving the classifier out,
loss scaling only for float16 on CUDA, metrics averaged over ranks) and add what a long unattended run needs:
a check that stops on a NaN / infinite loss before any checkpoint holds the weights it produced, and progress
lines with the time left for the whole run.

The training step never waits for the device: each update's loss stays there until a progress line (every
`--log-interval` updates and the epoch's last) reads the pending losses in one transfer, one all-reduce under DDP,
and checks them. On a GPU a per-step `loss.item()` drains the launch queue, which idles the GPU of a CIFAR-size
network whose time goes to kernel launches. Evaluation counts every sample of the dataset exactly once, also under
DDP, where the distributed sampler pads the ranks to equal length.
"""
import logging
import math
import time
from collections import OrderedDict
from contextlib import nullcontext
from typing import Callable, Dict, Iterable, List, Optional

import torch
import torch.nn as nn

from timm.task import ClassificationEvaluator, evaluation_sample_limit
from timm.utils import AverageMeter, dispatch_clip_grad, reduce_tensor, unwrap_model

from .errors import NonFiniteLossError

__all__ = ['RunClock', 'train_one_epoch', 'evaluate', 'clip_parameters']

_logger = logging.getLogger('train')


class RunClock:
    """Estimates the time left for a whole run from the updates done so far in this process.

    Args:
        total_updates: Updates still to run in this process (after any resume).
    """

    def __init__(self, total_updates: int):
        self.total_updates = max(total_updates, 1)
        self.done = 0
        self.start = time.time()

    def step(self, n: int = 1) -> None:
        self.done += n

    def elapsed(self) -> float:
        return time.time() - self.start

    def time_left(self) -> float:
        # Wall time per update so far includes the evaluations already run, so later estimates include them too.
        if self.done == 0:
            return float('nan')
        return self.elapsed() / self.done * (self.total_updates - self.done)


def format_seconds(seconds: float) -> str:
    """`h:mm:ss` (or `?` while unknown)."""
    if not math.isfinite(seconds):
        return '?'
    seconds = int(round(seconds))
    return f'{seconds // 3600:d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}'


def clip_parameters(model: nn.Module, exclude_head: bool = False) -> List[torch.nn.Parameter]:
    """Parameters to clip; with `exclude_head` the classifier's are left out (AGC, Brock et al. 2021).

    timm drops the last two parameters for this; identifying the classifier through `get_classifier()` is the
    same for timm's ResNets and also right for models whose last parameters are not the head's.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    if not exclude_head:
        return params
    inner = unwrap_model(model)
    get_classifier = getattr(inner, 'get_classifier', None)
    head = get_classifier() if get_classifier is not None else None
    if isinstance(head, nn.Module):
        head_ids = {id(p) for p in head.parameters()}
        return [p for p in params if id(p) not in head_ids]
    return params[:-2]


def _read_losses(losses: List[torch.Tensor], distributed: bool, world_size: int) -> List[float]:
    """The pending per-update losses as floats, averaged over ranks under DDP: the step's only host sync.

    A non-finite loss on any rank makes that update's mean non-finite on every rank, so all ranks stop at the same
    batch (a rank that went on would wait forever in DDP's all-reduce).
    """
    values = torch.stack(losses)
    if distributed:
        values = reduce_tensor(values, world_size)
    return values.tolist()


def train_one_epoch(
        epoch: int,
        model: nn.Module,
        loader: Iterable,
        optimizer: torch.optim.Optimizer,
        loss_fn: Callable,
        args,
        device: torch.device,
        clock: RunClock,
        num_epochs: int,
        lr_scheduler=None,
        amp_autocast=nullcontext,
        loss_scaler=None,
        model_ema: Optional[nn.Module] = None,
        mixup_fn: Optional[Callable] = None,
) -> Dict[str, float]:
    """Train for one epoch.

    Args:
        epoch: Epoch index (0-based).
        model: Model (possibly DDP-wrapped / compiled).
        loader: Training loader (timm `create_loader` output, prefetcher or not).
        optimizer: Optimizer.
        loss_fn: Training criterion.
        args: Run arguments (`prefetcher`, `channels_last`, `clip_grad`, `clip_mode`, `log_interval`,
            `distributed`, `world_size`, `rank`, `mixup_off_epoch`).
        device: Device.
        clock: Whole-run clock for the time-left estimate.
        num_epochs: Total epochs of the run, for progress lines.
        lr_scheduler: timm scheduler (stepped per update here, per epoch by the caller).
        amp_autocast: Autocast context factory.
        loss_scaler: timm `NativeScaler` (float16 on CUDA only) or None.
        model_ema: timm `ModelEmaV3` or None.
        mixup_fn: Mixup / CutMix for the non-prefetcher path (the prefetcher mixes in its collate).

    Returns:
        `{'loss': mean training loss over ranks}`.

    Raises:
        NonFiniteLossError: The loss of a batch was NaN or infinite on any rank; raised at the next progress line,
            before the epoch ends, so no checkpoint holds the weights updated from it.
    """
    if args.mixup_off_epoch and epoch >= args.mixup_off_epoch:
        if args.prefetcher and getattr(loader, 'mixup_enabled', False):
            loader.mixup_enabled = False
        elif mixup_fn is not None:
            mixup_fn.mixup_enabled = False

    second_order = getattr(optimizer, 'is_second_order', False)
    batch_time_m, data_time_m, losses_m = AverageMeter(), AverageMeter(), AverageMeter()
    model.train()
    # --clip-grad 0 means no clipping, as a missing value does (timm's scaler would clip to a norm of 0).
    clip_grad = args.clip_grad or None
    params_to_clip = clip_parameters(model, exclude_head='agc' in args.clip_mode) if clip_grad else None

    num_batches = len(loader)
    last_idx = num_batches - 1
    num_updates = epoch * num_batches
    pending_losses: List[torch.Tensor] = []  # on the device until the next progress line reads them
    pending_sizes: List[int] = []

    def read_pending(batch_idx: int) -> None:
        values = _read_losses(pending_losses, args.distributed, args.world_size)
        first = batch_idx + 1 - len(values)
        for i, (value, n) in enumerate(zip(values, pending_sizes)):
            if not math.isfinite(value):
                where = ' on some rank' if args.distributed else ''
                raise NonFiniteLossError(
                    f'training loss is {value}{where} at epoch {epoch} batch {first + i}; stopped at batch '
                    f'{batch_idx}, before saving the weights. Lower --lr, add --warmup-epochs or --clip-grad, '
                    f'or check the data')
            losses_m.update(value, n)
        pending_losses.clear()
        pending_sizes.clear()

    batch_idx = -1
    end = time.time()
    for batch_idx, (input, target) in enumerate(loader):
        last_batch = batch_idx == last_idx
        data_time_m.update(time.time() - end)
        if not args.prefetcher:
            input, target = input.to(device), target.to(device)
            if mixup_fn is not None:
                input, target = mixup_fn(input, target)
        if args.channels_last:
            input = input.contiguous(memory_format=torch.channels_last)

        with amp_autocast():
            output = model(input)
            loss = loss_fn(output, target)
        pending_losses.append(loss.detach().float())
        pending_sizes.append(input.shape[0])

        optimizer.zero_grad(set_to_none=True)
        if loss_scaler is not None:
            loss_scaler(loss, optimizer, clip_grad=clip_grad, clip_mode=args.clip_mode,
                        parameters=params_to_clip, create_graph=second_order)
        else:
            loss.backward(create_graph=second_order)
            if clip_grad:
                dispatch_clip_grad(params_to_clip, value=clip_grad, mode=args.clip_mode)
            optimizer.step()

        num_updates += 1
        if model_ema is not None:
            model_ema.update(unwrap_model(model), step=num_updates)
        if device.type == 'cuda' and args.synchronize_step:
            torch.cuda.synchronize()

        batch_size = input.shape[0]
        batch_time_m.update(time.time() - end)
        clock.step()

        if batch_idx % args.log_interval == 0 or last_batch:
            read_pending(batch_idx)
            lrs = [group['lr'] for group in optimizer.param_groups]
            lr = sum(lrs) / len(lrs)
            if args.rank == 0:
                rate = batch_size * args.world_size / max(batch_time_m.avg, 1e-9)
                _logger.info(
                    f'Train: {epoch}/{num_epochs} [{batch_idx:>4d}/{num_batches} '
                    f'({100. * (batch_idx + 1) / num_batches:>3.0f}%)]  '
                    f'Loss: {losses_m.val:#.3g} ({losses_m.avg:#.3g})  '
                    f'{rate:>7.1f} img/s  LR: {lr:.3e}  '
                    f'Data: {data_time_m.avg:.3f}s  '
                    f'Elapsed: {format_seconds(clock.elapsed())}  Left: {format_seconds(clock.time_left())}'
                )

        if lr_scheduler is not None:
            # The metric is the average as of the last progress line; timm's per-update schedules do not use it.
            lr_scheduler.step_update(num_updates=num_updates, metric=losses_m.avg)
        end = time.time()

    if pending_losses:  # a loader that yielded fewer batches than its len()
        read_pending(batch_idx)
    if hasattr(optimizer, 'sync_lookahead'):
        optimizer.sync_lookahead()

    # The epoch's last batch was read above, so the average already covers every update (and every rank).
    return OrderedDict([('loss', losses_m.avg)])


def evaluate(
        model: nn.Module,
        loader: Iterable,
        device: torch.device,
        prefetcher: bool = True,
        channels_last: bool = False,
        amp_autocast=nullcontext,
        distributed: bool = False,
        log_interval: int = 50,
        log_prefix: str = 'Test',
        log: bool = True,
) -> Dict[str, float]:
    """Cross-entropy loss, top-1 and top-5 accuracy (percent) of `model` over the samples of `loader`'s dataset.

    Under DDP every sample counts once: timm's evaluator drops the duplicates the distributed sampler pads the last
    ranks with, and the totals are summed over ranks, so the result equals a single-process evaluation's.

    Returns:
        `{'loss', 'top1', 'top5'}` (timm's names; top-5 is top-k with k = number of classes if fewer than 5).
    """
    evaluator = ClassificationEvaluator(device, max_samples=evaluation_sample_limit(loader))
    batch_time_m = AverageMeter()
    model.eval()
    last_idx = len(loader) - 1
    end = time.time()
    with torch.inference_mode():
        for batch_idx, (input, target) in enumerate(loader):
            if not prefetcher:
                input, target = input.to(device), target.to(device)
            if channels_last:
                input = input.contiguous(memory_format=torch.channels_last)
            with amp_autocast():
                output = model(input)
            if isinstance(output, (tuple, list)):
                output = output[0]
            evaluator.update(output, target)
            batch_time_m.update(time.time() - end)
            end = time.time()
            if log and (batch_idx == last_idx or batch_idx % log_interval == 0):
                running = evaluator.summary()  # this process's samples so far (one host sync, no collective)
                _logger.info(
                    f'{log_prefix}: [{batch_idx:>4d}/{last_idx}]  '
                    f'Time: {batch_time_m.val:.3f} ({batch_time_m.avg:.3f}, '
                    f'{output.shape[0] / max(batch_time_m.avg, 1e-9):>7.1f} img/s)  '
                    f'Loss: {running["loss"]:>6.3f}  Acc@1: {running["top1"]:>7.3f}  Acc@5: {running["top5"]:>7.3f}'
                )
    return evaluator.compute(distributed=distributed)
