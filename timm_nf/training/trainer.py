"""A training run from parsed `train/train.py` arguments, assembled from timm's library.

`run_training(args, run_args)` does what timm's train.py does (datasets, loaders with Mixup/CutMix and
RandAugment, optimizer, scheduler, loss, EMA, DDP, checkpoints, summary.csv) with these additions:

* `--dataset digits` (embedded, no download) and `--train-crop-mode pad` (CIFAR pad-and-random-crop).
* `--resume auto` continues the experiment in `<output>/<experiment>/` from its last checkpoint, or starts it.
* Every check that can fail on bad input runs before anything is written, and fails with a one-line
  `RunError`; all files are written by rank 0 only, atomically.
* A NaN / infinite loss stops the run before any checkpoint holds the weights it produced, keeping the last good
  checkpoint; the training step itself never waits for the device (see `engine.py`).
* On CUDA, cuDNN autotuning is on unless `--no-cudnn-benchmark`; `--deterministic` asks for reruns that agree;
  `--amp` with float16 warns when the model's activations at init leave float16 little headroom (`backends.py`).
"""
import logging
import logging.handlers
import os
import shutil
import tempfile
from contextlib import nullcontext
from datetime import datetime
from functools import partial
from typing import Any, Dict, Optional

import torch
import torch.nn as nn
import yaml

from timm.data import FastCollateMixup, Mixup, create_loader, resolve_data_config
from timm.layers import convert_sync_batchnorm
from timm.loss import BinaryCrossEntropy, LabelSmoothingCrossEntropy, SoftTargetCrossEntropy
from timm.models import create_model, safe_model_name
from timm.optim import create_optimizer_v2, optimizer_kwargs
from timm.scheduler import create_scheduler_v2, scheduler_kwargs
from timm.utils import (
    ModelEmaV3, NativeScaler, distribute_bn, get_outdir, init_distributed_device, random_seed, trim_summary,
    update_summary,
)

from timm_nf.data import (
    PAD_CROP_MODE, check_training_splits, create_dataset, dataset_num_classes, transforms_pad_crop_train,
)

from .backends import configure_backends, float16_overflow_warning, peak_activation
from .checkpoint import (
    AtomicCheckpointSaver, atomic_write_text, checkpoint_state_dict, current_umask, find_resume_checkpoint,
    load_checkpoint_file, load_model_checkpoint, load_model_state, remove_stale_temp_files,
)
from .engine import RunClock, evaluate, format_seconds, train_one_epoch
from .errors import RunError

__all__ = ['run_training', 'build_model', 'resolve_device']

_logger = logging.getLogger('train')


def resolve_device(requested: Optional[str]) -> str:
    """`--device` value to use: the given one, else CUDA when available, else CPU; error if CUDA is missing."""
    if not requested:
        return 'cuda' if torch.cuda.is_available() else 'cpu'
    if requested.startswith('cuda') and not torch.cuda.is_available():
        raise RunError(f'--device {requested} was given but CUDA is not available; use --device cpu')
    return requested


def known_model(name: str) -> bool:
    """A registered timm name (with or without a pretrained tag), or a Hub / local folder that timm loads itself."""
    import timm
    return name.startswith(('hf-hub:', 'hf_hub:', 'local-dir:')) or timm.is_model(name)


def build_model(
        model_name: str,
        pretrained: bool = False,
        num_classes: Optional[int] = None,
        model_kwargs: Optional[Dict[str, Any]] = None,
        **kwargs: Any,
) -> nn.Module:
    """`timm.create_model` with unknown names and bad keyword arguments reported as one-line `RunError`s."""
    import timm
    if not known_model(model_name):
        import fnmatch
        close = [m for m in timm.list_models() if fnmatch.fnmatch(m, f'*{model_name.split(".")[0][:6]}*')][:5]
        hint = f" (similar: {', '.join(close)})" if close else ''
        raise RunError(f'unknown model {model_name!r}{hint}; list models with '
                       f'python -c "import timm_nf, timm; print(timm.list_models())"')
    from timm_nf.pretrained import NoPretrainedWeightsError, WeightsUnavailableError
    try:
        return create_model(model_name, pretrained=pretrained, num_classes=num_classes,
                            **kwargs, **(model_kwargs or {}))
    except TypeError as e:
        raise RunError(f'cannot create model {model_name!r} with these arguments ({e}); check --model-kwargs') from e
    except ValueError as e:  # a keyword argument with a value the family does not take (the message lists them)
        raise RunError(f'cannot create model {model_name!r}: {e}') from e
    except (WeightsUnavailableError, NoPretrainedWeightsError) as e:  # one line naming the tag's folder / the tags
        raise RunError(str(e)) from e
    except RuntimeError as e:
        if pretrained and 'pretrained' in str(e).lower():
            raise RunError(f'no pretrained weights for {model_name!r}; give a weights file instead '
                           f'(validate.py --checkpoint, train.py --initial-checkpoint)') from e
        raise
    except OSError as e:  # pretrained download without network, hub errors
        raise RunError(f'cannot load pretrained weights for {model_name!r}: {str(e).splitlines()[0][:200]}') from e


def _wrapper_chain(model: nn.Module) -> str:
    """The model's wrappers, outermost first, e.g. `OptimizedModule(DistributedDataParallel(ResidualNet))`."""
    names = [type(model).__name__]
    inner = getattr(model, '_orig_mod', None) or getattr(model, 'module', None)
    while isinstance(inner, nn.Module):
        names.append(type(inner).__name__)
        inner = getattr(inner, '_orig_mod', None) or getattr(inner, 'module', None)
    return '('.join(names) + ')' * (len(names) - 1)


def _check_num_classes(args, dataset, split: str) -> None:
    n_data = dataset_num_classes(dataset)
    if n_data is None:
        return
    if args.num_classes is None:
        args.num_classes = n_data
        _logger.info(f'Using --num-classes {n_data} (the number of classes of dataset split {split!r}).')
    elif n_data > args.num_classes:
        raise RunError(
            f'dataset split {split!r} has {n_data} classes but --num-classes is {args.num_classes}; '
            f'pass --num-classes {n_data}')
    elif n_data < args.num_classes and args.rank == 0:
        _logger.warning(f'dataset split {split!r} has {n_data} classes, fewer than --num-classes {args.num_classes}.')


def _experiment_name(args, img_size: int) -> str:
    if args.experiment:
        return args.experiment
    name = f'{safe_model_name(args.model)}-{img_size}'
    if args.resume == 'auto':
        # Deterministic, so that re-running the same command finds and continues the same experiment.
        return name
    return f"{datetime.now().strftime('%Y%m%d-%H%M%S')}-{name}"


def _atomic_update_summary(filename: str, epoch: int, train_metrics, eval_metrics, lr: float) -> None:
    # Append on a copy and rename it over the original: a kill never leaves a half-written row to be misread
    # on resume.
    directory = os.path.dirname(filename)
    fd, tmp = tempfile.mkstemp(prefix='.summary.csv.tmp-', dir=directory)
    os.close(fd)
    try:
        os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp's 0600 would make the summary private
        if os.path.exists(filename):
            shutil.copyfile(filename, tmp)
        update_summary(epoch, train_metrics, eval_metrics, filename=tmp, lr=lr)
        os.replace(tmp, filename)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _start_log_buffer() -> logging.handlers.MemoryHandler:
    # The log file's directory is known only once the model and data are resolved; keep what is logged until
    # then so that train.log holds the whole run.
    handler = logging.handlers.MemoryHandler(capacity=100000, flushLevel=logging.CRITICAL + 1, flushOnClose=False)
    logging.getLogger().addHandler(handler)
    return handler


def _add_log_file(path: str, buffer: Optional[logging.handlers.MemoryHandler] = None) -> logging.Handler:
    handler = logging.FileHandler(path, mode='a')
    handler.setFormatter(logging.Formatter('%(asctime)s %(levelname)s %(name)s: %(message)s'))
    if buffer is not None:
        buffer.setTarget(handler)
        buffer.flush()
        logging.getLogger().removeHandler(buffer)
        buffer.close()
    logging.getLogger().addHandler(handler)
    return handler


def _loss_fn(args, mixup_active: bool) -> nn.Module:
    # Same choice as timm's train.py: mixup makes soft targets (smoothing applied by the mixup), BCE on request.
    if mixup_active:
        if args.bce_loss:
            return BinaryCrossEntropy(target_threshold=args.bce_target_thresh)
        return SoftTargetCrossEntropy()
    if args.smoothing:
        if args.bce_loss:
            return BinaryCrossEntropy(smoothing=args.smoothing, target_threshold=args.bce_target_thresh)
        return LabelSmoothingCrossEntropy(smoothing=args.smoothing)
    return nn.CrossEntropyLoss()


def run_training(args, run_args: Dict[str, Any]) -> Dict[str, Any]:
    """Train and validate as timm's train.py does, with the behaviour described in the module docstring.

    Args:
        args: Parsed arguments of `train/train.py` (modified in place with resolved values: device, ranks, lr,
            num_classes).
        run_args: The arguments as parsed (for `args.yaml` and the checkpoints).

    Returns:
        `output_dir`, `best_metric`, `best_epoch`, `last_epoch`, `eval_metrics` (last), `elapsed` seconds.

    Raises:
        RunError: Bad input (data, model, checkpoint, flags) or a fault such as a non-finite loss.
    """
    # Only the process that will be rank 0 keeps the log for train.log (torchrun sets RANK before start).
    log_buffer = _start_log_buffer() if int(os.environ.get('RANK', '0')) == 0 else None
    try:
        return _run_training(args, run_args, log_buffer)
    finally:
        if log_buffer is not None:
            logging.getLogger().removeHandler(log_buffer)
            log_buffer.close()


def _run_training(args, run_args: Dict[str, Any], log_buffer: Optional[logging.Handler]) -> Dict[str, Any]:
    """The run itself; `log_buffer` holds the log lines emitted before train.log can be opened."""
    args.device = resolve_device(args.device)
    args.prefetcher = not args.no_prefetcher
    if args.train_crop_mode not in (None, '', 'rrc', 'rkrc', 'rkrr', PAD_CROP_MODE):
        raise RunError(f'unknown --train-crop-mode {args.train_crop_mode!r}; use rrc, rkrc, rkrr or {PAD_CROP_MODE}')
    if args.sync_bn and not args.device.startswith('cuda'):
        raise RunError('--sync-bn needs CUDA devices; drop it (--dist-bn reduce averages BatchNorm stats instead)')
    if args.resume and args.resume != 'auto' and not os.path.isfile(args.resume):
        raise RunError(f'--resume checkpoint {args.resume!r} does not exist; give a checkpoint file or "auto"')
    if args.initial_checkpoint and not os.path.isfile(args.initial_checkpoint):
        raise RunError(f'--initial-checkpoint {args.initial_checkpoint!r} does not exist')

    device = init_distributed_device(args)
    primary = args.rank == 0
    if args.distributed:
        _logger.info(f'Distributed training: process {args.rank} of {args.world_size}, device {device}.')
    else:
        _logger.info(f'Training with a single process on {device}.')
    backends = configure_backends(device, deterministic=args.deterministic, cudnn_benchmark=args.cudnn_benchmark)
    if primary:
        _logger.info(f'Algorithms: {backends}.')

    amp_dtype = torch.bfloat16 if args.amp_dtype == 'bfloat16' else torch.float16
    amp_autocast = partial(torch.autocast, device_type=device.type, dtype=amp_dtype) if args.amp else nullcontext
    random_seed(args.seed, args.rank)

    # Datasets first: the cheapest inputs to get wrong, checked before a model is built or a file written.
    check_training_splits(args.dataset, args.train_split, args.val_split)
    dataset_train = create_dataset(
        args.dataset, root=args.data_dir, split=args.train_split, is_training=True, class_map=args.class_map,
        download=args.dataset_download, batch_size=args.batch_size, seed=args.seed,
        num_samples=args.train_num_samples)
    dataset_eval = None
    if args.val_split:
        dataset_eval = create_dataset(
            args.dataset, root=args.data_dir, split=args.val_split, is_training=False, class_map=args.class_map,
            download=args.dataset_download, batch_size=args.batch_size, num_samples=args.val_num_samples)
    _check_num_classes(args, dataset_train, args.train_split)

    model = build_model(
        args.model, pretrained=args.pretrained, num_classes=args.num_classes, drop_rate=args.drop,
        drop_path_rate=args.drop_path, drop_block_rate=args.drop_block, global_pool=args.gp,
        bn_momentum=args.bn_momentum, bn_eps=args.bn_eps, model_kwargs=args.model_kwargs)
    if args.num_classes is None:
        args.num_classes = model.num_classes
    if args.initial_checkpoint:
        load_model_checkpoint(model, args.initial_checkpoint, model_name=args.model)
        _logger.info(f'Loaded initial weights from {args.initial_checkpoint}.')
    if args.grad_checkpointing:
        model.set_grad_checkpointing(enable=True)
    model_args = dict(num_classes=args.num_classes, **args.model_kwargs)
    param_count = sum(p.numel() for p in model.parameters())
    if primary:
        _logger.info(f'Model {args.model} created, {param_count / 1e6:.3f}M parameters.')

    data_config = resolve_data_config(vars(args), model=model, verbose=primary)
    img_size = data_config['input_size'][-1]

    # Where the experiment lives, and which checkpoint (if any) it continues from.
    output_base = args.output or './output/train'
    exp_name = _experiment_name(args, img_size)
    if args.distributed:
        # Timestamped names differ between processes started a second apart: every rank uses rank 0's.
        names = [exp_name]
        torch.distributed.broadcast_object_list(names, src=0)
        exp_name = names[0]
    output_dir = os.path.join(output_base, exp_name)
    resume_path = args.resume
    if args.resume == 'auto':
        resume_path = find_resume_checkpoint(output_dir)
        if primary:
            _logger.info('--resume auto: ' + (f'continuing from {resume_path}.' if resume_path
                                               else f'no checkpoint in {output_dir}, starting fresh.'))
    elif not args.resume and os.path.isfile(os.path.join(output_dir, 'last.pth.tar')):
        raise RunError(f'experiment dir {output_dir!r} already holds checkpoints of an earlier run; '
                       f'pass --resume auto to continue it, or choose another --experiment')

    model.to(device=device)
    if args.channels_last:
        model.to(memory_format=torch.channels_last)
    if args.distributed and args.sync_bn:
        args.dist_bn = ''  # SyncBatchNorm already keeps the statistics equal on all ranks
        model = convert_sync_batchnorm(model)

    loss_scaler = None
    if args.amp and device.type == 'cuda' and amp_dtype == torch.float16:
        loss_scaler = NativeScaler(device=device.type)  # bfloat16 and CPU autocast need no loss scaling

    # Loaders: timm's create_loader (sampler, prefetcher, collate, RandAugment, random erasing), with the
    # CIFAR pad-and-crop transform swapped in for `--train-crop-mode pad`.
    mixup_active = args.mixup > 0 or args.cutmix > 0. or args.cutmix_minmax is not None
    mixup_args = dict(
        mixup_alpha=args.mixup, cutmix_alpha=args.cutmix, cutmix_minmax=args.cutmix_minmax, prob=args.mixup_prob,
        switch_prob=args.mixup_switch_prob, mode=args.mixup_mode, label_smoothing=args.smoothing,
        num_classes=args.num_classes)
    collate_fn, mixup_fn = None, None
    if mixup_active:
        if args.prefetcher:
            collate_fn = FastCollateMixup(**mixup_args)
        else:
            mixup_fn = Mixup(**mixup_args)
    pad_crop = args.train_crop_mode == PAD_CROP_MODE
    train_interpolation = args.train_interpolation
    if args.no_aug or not train_interpolation:
        train_interpolation = data_config['interpolation']
    common_loader_kwargs = dict(
        mean=data_config['mean'], std=data_config['std'], num_workers=args.workers, distributed=args.distributed,
        pin_memory=args.pin_mem, device=device, use_prefetcher=args.prefetcher)
    loader_train = create_loader(
        dataset_train, input_size=data_config['input_size'], batch_size=args.batch_size, is_training=True,
        no_aug=args.no_aug, re_prob=args.reprob, re_mode=args.remode, re_count=args.recount, re_split=args.resplit,
        train_crop_mode=None if pad_crop else args.train_crop_mode, scale=args.scale, ratio=args.ratio,
        hflip=args.hflip, vflip=args.vflip, color_jitter=args.color_jitter, auto_augment=args.aa,
        num_aug_repeats=args.aug_repeats, interpolation=train_interpolation, collate_fn=collate_fn,
        worker_seeding=args.worker_seeding, **common_loader_kwargs)
    if pad_crop and not args.no_aug:
        # Workers start when the loader is first iterated, so replacing the transform here takes effect.
        dataset_train.transform = transforms_pad_crop_train(
            data_config['input_size'][-2:], padding=args.crop_padding, hflip=args.hflip, vflip=args.vflip,
            auto_augment=args.aa, interpolation=data_config['interpolation'], mean=data_config['mean'],
            std=data_config['std'], re_prob=args.reprob, re_mode=args.remode, re_count=args.recount,
            use_prefetcher=args.prefetcher)
    loader_eval = None
    if dataset_eval is not None:
        loader_eval = create_loader(
            dataset_eval, input_size=data_config['input_size'],
            batch_size=args.validation_batch_size or args.batch_size, is_training=False,
            interpolation=data_config['interpolation'], crop_pct=data_config['crop_pct'], **common_loader_kwargs)

    if not args.lr:
        global_batch_size = args.batch_size * args.world_size
        batch_ratio = global_batch_size / args.lr_base_size
        scale = args.lr_base_scale or ('sqrt' if any(o in args.opt.lower() for o in ('ada', 'lamb')) else 'linear')
        args.lr = args.lr_base * (batch_ratio ** 0.5 if scale == 'sqrt' else batch_ratio)
        if primary:
            _logger.info(f'Learning rate {args.lr:g} = --lr-base {args.lr_base} x ({global_batch_size} / '
                         f'{args.lr_base_size}) with {scale} scaling.')

    train_loss_fn = _loss_fn(args, mixup_active).to(device)
    optimizer = create_optimizer_v2(model, **optimizer_kwargs(cfg=args), **args.opt_kwargs)

    # Resume: model, optimizer, loss scaler and (below) EMA state, checked and loaded before any file is written.
    resume_checkpoint = None
    start_epoch = 0
    if resume_path:
        resume_checkpoint = load_checkpoint_file(resume_path)
        state_dict = checkpoint_state_dict(resume_checkpoint, resume_path)
        load_model_state(model, state_dict, resume_path, model_name=args.model,
                         saved_arch=resume_checkpoint.get('arch'))
        if not args.no_resume_opt and 'optimizer' in resume_checkpoint:
            optimizer.load_state_dict(resume_checkpoint['optimizer'])
        if loss_scaler is not None and loss_scaler.state_dict_key in resume_checkpoint:
            loss_scaler.load_state_dict(resume_checkpoint[loss_scaler.state_dict_key])
        if 'epoch' in resume_checkpoint:
            start_epoch = resume_checkpoint['epoch'] + (1 if resume_checkpoint.get('version', 1) > 1 else 0)
        if primary:
            _logger.info(f'Resumed from {resume_path} (epoch {resume_checkpoint.get("epoch")}).')

    model_ema = None
    if args.model_ema:
        # Created after moving the model to its device and before DDP wrapping, as in timm.
        model_ema = ModelEmaV3(model, decay=args.model_ema_decay, use_warmup=args.model_ema_warmup,
                               device='cpu' if args.model_ema_force_cpu else None)
        if resume_checkpoint is not None:
            if 'state_dict_ema' in resume_checkpoint:
                load_model_state(model_ema.module, checkpoint_state_dict(resume_checkpoint, resume_path, True),
                                 resume_path, model_name=args.model)
            elif primary:
                _logger.warning(f'{resume_path} has no EMA weights; the EMA restarts from the resumed model.')

    if args.amp and amp_dtype == torch.float16 and primary:
        # Measured on the weights training starts from, before any wrapper; the run's RNG streams are untouched.
        warning = float16_overflow_warning(args.model, peak_activation(
            model, loader_eval if loader_eval is not None else loader_train, device))
        if warning:
            _logger.warning(warning)

    if args.distributed:
        # broadcast_buffers is passed only to turn it off: torch >= 2.12 warns whenever it is given.
        ddp_kwargs = dict(broadcast_buffers=False) if args.no_ddp_bb else {}
        model = nn.parallel.DistributedDataParallel(
            model, device_ids=[device] if device.type == 'cuda' else None, **ddp_kwargs)
    if args.torchcompile:
        # After the DDP wrap, PyTorch's documented order for DDP + torch.compile (and timm's train.py up to 1.0.26):
        # dynamo's DDPOptimizer cuts the compiled graph at DDP's gradient buckets, so that each bucket's all-reduce
        # can overlap the rest of the backward.
        model = torch.compile(model, backend=args.torchcompile, mode=args.torchcompile_mode)
        if primary:
            _logger.info(f'Compiled with backend {args.torchcompile}: training {_wrapper_chain(model)}.')

    updates_per_epoch = len(loader_train)
    lr_scheduler, num_epochs = create_scheduler_v2(
        optimizer, **scheduler_kwargs(args, decreasing_metric=args.eval_metric == 'loss'),
        updates_per_epoch=updates_per_epoch)
    if args.start_epoch is not None:
        start_epoch = args.start_epoch
    if lr_scheduler is not None and start_epoch > 0:
        if args.sched_on_updates:
            lr_scheduler.step_update(start_epoch * updates_per_epoch)
        else:
            lr_scheduler.step(start_epoch)

    # From here on files are written (rank 0 only).
    saver = None
    log_handler = None
    eval_metric = args.eval_metric if loader_eval is not None else 'loss'
    if primary:
        output_dir = get_outdir(output_base, exp_name)
        remove_stale_temp_files(output_dir)
        log_handler = _add_log_file(os.path.join(output_dir, 'train.log'), log_buffer)
        run_args = dict(run_args, num_classes=args.num_classes, lr=args.lr)
        saver = AtomicCheckpointSaver(
            model=model, optimizer=optimizer, model_ema=model_ema, amp_scaler=loss_scaler,
            checkpoint_dir=output_dir, recovery_dir=output_dir, decreasing=eval_metric == 'loss',
            max_history=args.checkpoint_hist, run_args=run_args, model_args=model_args)
        saver._replace = os.replace  # timm unlinks the target first (for Windows); os.replace is atomic
        if resume_checkpoint is not None and os.path.dirname(os.path.abspath(resume_path)) == \
                os.path.abspath(output_dir) and isinstance(resume_checkpoint.get('saver'), dict):
            saver.load_state_dict(resume_checkpoint['saver'])
        atomic_write_text(os.path.join(output_dir, 'args.yaml'),
                          yaml.safe_dump(run_args, default_flow_style=False))
        trim_summary(os.path.join(output_dir, 'summary.csv'), start_epoch)
        _logger.info(f'Outputs in {output_dir}. Scheduled epochs: {num_epochs}, starting at epoch {start_epoch}, '
                     f'{updates_per_epoch} updates per epoch.')
    resume_checkpoint = None  # free the tensors

    best_metric, best_epoch = (saver.best_metric, saver.best_epoch) if saver is not None else (None, None)
    eval_metrics = None
    clock = RunClock((num_epochs - start_epoch) * updates_per_epoch)
    epoch = start_epoch - 1
    try:
        for epoch in range(start_epoch, num_epochs):
            for obj in (getattr(loader_train, 'sampler', None), dataset_train):
                if hasattr(obj, 'set_epoch'):
                    obj.set_epoch(epoch)
            train_metrics = train_one_epoch(
                epoch, model, loader_train, optimizer, train_loss_fn, args, device=device, clock=clock,
                num_epochs=num_epochs, lr_scheduler=lr_scheduler, amp_autocast=amp_autocast,
                loss_scaler=loss_scaler, model_ema=model_ema, mixup_fn=mixup_fn)
            if args.distributed and args.dist_bn in ('broadcast', 'reduce'):
                distribute_bn(model, args.world_size, args.dist_bn == 'reduce')

            eval_metrics = None
            if loader_eval is not None:
                eval_kwargs = dict(
                    device=device, prefetcher=args.prefetcher, channels_last=args.channels_last,
                    amp_autocast=amp_autocast, distributed=args.distributed,
                    log_interval=args.log_interval, log=primary)
                eval_metrics = evaluate(model, loader_eval, **eval_kwargs)
                if model_ema is not None and not args.model_ema_force_cpu:
                    if args.distributed and args.dist_bn in ('broadcast', 'reduce'):
                        distribute_bn(model_ema, args.world_size, args.dist_bn == 'reduce')
                    # As in timm, the EMA weights' metrics are the ones recorded and ranked.
                    eval_metrics = evaluate(model_ema, loader_eval, log_prefix='Test (EMA)', **eval_kwargs)

            latest_metric = (eval_metrics or train_metrics)[eval_metric]
            if saver is not None:
                lrs = [group['lr'] for group in optimizer.param_groups]
                # Summary row before the checkpoint: a checkpointed epoch always has its row; a row without a
                # checkpoint is dropped by trim_summary when the run resumes.
                _atomic_update_summary(
                    os.path.join(output_dir, 'summary.csv'), epoch, train_metrics, eval_metrics, sum(lrs) / len(lrs))
                best_metric, best_epoch = saver.save_checkpoint(epoch, metric=latest_metric)
                top1 = f', eval top-1 {eval_metrics["top1"]:.2f}%' if eval_metrics else ''
                _logger.info(f'Epoch {epoch} done: train loss {train_metrics["loss"]:.4f}{top1}; '
                             f'elapsed {format_seconds(clock.elapsed())}, left {format_seconds(clock.time_left())}.')
            if lr_scheduler is not None:
                lr_scheduler.step(epoch + 1, latest_metric)
    except RunError as e:
        if primary and os.path.isfile(os.path.join(output_dir, 'last.pth.tar')):
            e.args = (f'{e.args[0]}; last good checkpoint: {os.path.join(output_dir, "last.pth.tar")}',)
        raise
    finally:
        if log_handler is not None:
            logging.getLogger().removeHandler(log_handler)
            log_handler.close()

    if primary and best_metric is not None:
        _logger.info(f'*** Best {eval_metric}: {best_metric:.4f} (epoch {best_epoch})')
    return dict(
        output_dir=output_dir if primary else None, best_metric=best_metric, best_epoch=best_epoch,
        last_epoch=epoch, eval_metrics=eval_metrics, elapsed=clock.elapsed(), num_epochs=num_epochs,
        param_count=param_count)
