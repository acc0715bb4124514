"""Block adapters: the one place that knows how each residual block class is built.

The measurements of `timm_nf.analysis` need, per residual block, its input, its output, its residual branch
*before* the block scales it (alpha, skip gain, drop-path) and, at a transition, its shortcut. Input and output
come from forward hooks on the block itself, so any block works for those. Branch and shortcut come from forward
hooks on sub-modules, and which sub-module holds them depends on the block class: timm's `Bottleneck` adds the
shortcut in place onto `bn3`'s output and applies the final ReLU in the same forward, so the branch is only seen
at `bn3` (or `se`). A `BlockAdapter` per block class names those sub-modules. Adapters are keyed by the class's
import path, so registering one needs no import of the model code, and are looked up along the MRO, so
subclasses inherit their parent's adapter.

Modules of unregistered classes that carry a `downsample` or `shortcut` attribute are still treated as residual
blocks (input/output statistics and residual difference), without branch statistics.

The same registry holds the per-class knowledge the analysis transforms need: which parameters zero-initialize
a residual branch (`set_unit_gains`) and which convolutions are weight-standardized (`unscale_nf`,
`effective_conv_weight`).

Papers:
    Brock, De & Smith, `Characterizing signal propagation to close the performance gap in unnormalized
    ResNets`, ICLR 2021 (signal propagation plots, Scaled WS, alpha/beta, skip gains).
    Shang, Chiu & Sohn, `Exploring Normalization in Deep Residual Networks with Concatenated Rectified Linear
    Units`, AAAI 2017 (residual differences, filter coherence).
"""
import math
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Tuple

import torch
import torch.nn as nn

__all__ = [
    'BlockAdapter', 'ResidualBlock', 'register_block_adapter', 'get_block_adapter', 'find_residual_blocks',
    'set_unit_gains', 'unscale_nf', 'effective_conv_weight', 'is_weight_standardized', 'TRANSFORMS',
    'NoResidualBlocksError', 'first_module',
]


class NoResidualBlocksError(ValueError):
    """Raised when a model has no module the analysis recognises as a residual block."""


def first_module(*names: str) -> Callable[[nn.Module], Optional[nn.Module]]:
    """Getter of the first attribute among `names` that is a module (None when none is)."""
    def get(block: nn.Module) -> Optional[nn.Module]:
        for n in names:
            m = getattr(block, n, None)
            if isinstance(m, nn.Module):
                return m
        return None
    return get


def _params(*paths: str) -> Callable[[nn.Module], List[Tuple[str, torch.Tensor]]]:
    """Getter of the parameters at dotted `paths` that exist (missing or None ones are skipped)."""
    def get(block: nn.Module) -> List[Tuple[str, torch.Tensor]]:
        out = []
        for p in paths:
            obj = block
            for part in p.split('.'):
                obj = getattr(obj, part, None)
                if obj is None:
                    break
            if isinstance(obj, torch.Tensor):
                out.append((p, obj))
        return out
    return get


def _no_params(block: nn.Module) -> List[Tuple[str, torch.Tensor]]:
    return []


@dataclass(frozen=True)
class BlockAdapter:
    """How the analysis reads one residual block class.

    Attributes:
        branch: Returns the sub-module whose output is the residual branch before the block's residual scaling
            (alpha, skip gain, drop-path), or None when the class does not expose it.
        branch_scale: Returns a constant the branch module's output is multiplied by inside the branch (e.g.
            timm's NF attention gain), 1 otherwise.
        shortcut: Returns the sub-module whose output is the identity path (a transition's projection or
            subsample/zero-pad), or None when the identity path is the block input itself.
        zero_init: Returns ``(name, tensor)`` of the parameters that may zero-initialize the residual branch.
            `set_unit_gains` resets those that are entirely zero.
        nf_scales: True for NF blocks with float attributes ``alpha`` (residual scale) and ``beta`` (1 / expected
            std of the block input): then the expected output variance is tracked and `unscale_nf` applies.
    """
    branch: Callable[[nn.Module], Optional[nn.Module]] = lambda block: None
    branch_scale: Callable[[nn.Module], float] = lambda block: 1.0
    shortcut: Callable[[nn.Module], Optional[nn.Module]] = first_module('downsample')
    zero_init: Callable[[nn.Module], List[Tuple[str, torch.Tensor]]] = _no_params
    nf_scales: bool = False


_BLOCK_ADAPTERS: Dict[str, BlockAdapter] = {}

# Fallback for unregistered classes: the residual stream is still measured, the branch is not.
GENERIC_ADAPTER = BlockAdapter(shortcut=first_module('downsample', 'shortcut'))


def _class_path(cls: type) -> str:
    return f'{cls.__module__}.{cls.__qualname__}'


def register_block_adapter(cls_path: str, adapter: BlockAdapter) -> None:
    """Register `adapter` for the block class at import path `cls_path` (e.g. ``'timm.models.resnet.Bottleneck'``)."""
    _BLOCK_ADAPTERS[cls_path] = adapter


def get_block_adapter(module: nn.Module) -> Optional[BlockAdapter]:
    """The adapter of `module`'s class or nearest registered base class, else None."""
    for cls in type(module).__mro__:
        adapter = _BLOCK_ADAPTERS.get(_class_path(cls))
        if adapter is not None:
            return adapter
    return None


def _last_in_branch(*suffixes: str) -> Callable[[nn.Module], List[Tuple[str, torch.Tensor]]]:
    """Getter of ``branch.<child>.<suffix>`` for the last child of ``block.branch`` that has one of `suffixes`."""
    def get(block: nn.Module) -> List[Tuple[str, torch.Tensor]]:
        branch = getattr(block, 'branch', None)
        if branch is None:
            return []
        for name, child in reversed(list(branch.named_children())):
            for s in suffixes:
                t = getattr(child, s, None)
                if isinstance(t, torch.Tensor):
                    return [(f'branch.{name}.{s}', t)]
        return []
    return get


def _nf_block_zero_init(block: nn.Module) -> List[Tuple[str, torch.Tensor]]:
    # Our NF block zero-initializes through a scalar skip gain (DeepMind) and possibly the last conv's gain (timm).
    return _params('skip_gain')(block) + _last_in_branch('gain')(block)


def _register_defaults() -> None:
    # timm ResNet v1 (resnet.py): out = act(bn_last(...) [* se] + shortcut), add and act in one forward, so the
    # branch is tapped at se (if any) or the last BN. zero_init_last zeroes that BN's weight.
    register_block_adapter('timm.models.resnet.BasicBlock', BlockAdapter(
        branch=first_module('se', 'bn2'), zero_init=_params('bn2.weight')))
    register_block_adapter('timm.models.resnet.Bottleneck', BlockAdapter(
        branch=first_module('se', 'bn3'), zero_init=_params('bn3.weight')))
    # timm ResNetV2 (resnetv2.py): pre-activation, out = conv_last(...) + shortcut. zero_init_last zeroes the conv
    # weight itself (set_unit_gains re-initializes it rather than filling it with ones).
    register_block_adapter('timm.models.resnetv2.PreActBasic', BlockAdapter(
        branch=first_module('conv2'), zero_init=_params('conv2.weight')))
    register_block_adapter('timm.models.resnetv2.PreActBottleneck', BlockAdapter(
        branch=first_module('conv3'), zero_init=_params('conv3.weight')))
    register_block_adapter('timm.models.resnetv2.Bottleneck', BlockAdapter(
        branch=first_module('norm3'), zero_init=_params('norm3.weight')))
    # timm NF-ResNet / NF-RegNet (nfnet.py): branch ends in conv3 (or attn_last, scaled by attn_gain); zero-init via
    # conv3's Scaled WS gain, or the skipinit gain.
    register_block_adapter('timm.models.nfnet.NormFreeBlock', BlockAdapter(
        branch=first_module('attn_last', 'conv3'),
        branch_scale=lambda b: b.attn_gain if getattr(b, 'attn_last', None) is not None else 1.0,
        zero_init=_params('conv3.gain', 'skipinit_gain'), nf_scales=True))
    # timm_nf (timm_nf/layers/blocks.py): both blocks keep their branch in one `branch` Sequential.
    register_block_adapter('timm_nf.layers.blocks.PostActBlock', BlockAdapter(
        branch=first_module('branch'), zero_init=_last_norm_weight))
    # Our NF blocks may carry alpha in the branch's last conv weight (NFBlock.branch_scale): divide it back out.
    register_block_adapter('timm_nf.layers.blocks.NFBlock', BlockAdapter(
        branch=first_module('branch'), branch_scale=lambda b: 1.0 / b.branch_scale(), zero_init=_nf_block_zero_init,
        nf_scales=True))


def _last_norm_weight(block: nn.Module) -> List[Tuple[str, torch.Tensor]]:
    """Weight of the last normalization layer of ``block.branch`` (the one a zero-init-last scheme zeroes)."""
    branch = getattr(block, 'branch', None)
    if branch is None:
        return []
    norm_types = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)
    for name, child in reversed(list(branch.named_children())):
        if isinstance(child, norm_types) and isinstance(getattr(child, 'weight', None), torch.Tensor):
            return [(f'branch.{name}.weight', child.weight)]
    return []


_register_defaults()

_CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)


@dataclass
class ResidualBlock:
    """A residual block found in a model: its module path, module and adapter."""
    name: str
    module: nn.Module
    adapter: BlockAdapter
    registered: bool

    @property
    def stage_name(self) -> str:
        """Path of the container holding the block (``layer3``, ``stages.2``, ``stages.2.blocks``)."""
        return self.name.rsplit('.', 1)[0] if '.' in self.name else ''


def find_residual_blocks(model: nn.Module) -> List[ResidualBlock]:
    """Outermost residual blocks of `model`, in module order.

    A module is a residual block if its class (or a base class) has a registered adapter, or, as a fallback, if it
    is not a container and has a ``downsample`` or ``shortcut`` attribute (None counts: timm blocks keep
    ``downsample = None`` when the identity path is the input), or ``has_skip = True`` (timm's EfficientNet family).
    Blocks nested inside a found block are ignored.

    Raises:
        NoResidualBlocksError: When no module qualifies.
    """
    blocks: List[ResidualBlock] = []
    for name, m in model.named_modules():
        if not name or any(name.startswith(b.name + '.') for b in blocks[-1:]):
            continue
        adapter = get_block_adapter(m)
        registered = adapter is not None
        if adapter is None and not isinstance(m, _CONTAINERS):
            # timm's EfficientNet/MobileNet blocks say whether they add their input back with `has_skip`.
            if hasattr(m, 'downsample') or hasattr(m, 'shortcut') or getattr(m, 'has_skip', None) is True:
                adapter = GENERIC_ADAPTER
        if adapter is not None:
            blocks.append(ResidualBlock(name, m, adapter, registered))
    if not blocks:
        raise NoResidualBlocksError(
            f'{type(model).__name__} has no residual blocks the analysis can find: no module of a class registered '
            f'in timm_nf.analysis.adapters (e.g. timm ResNet/ResNetV2/NF blocks, timm_nf blocks) and no module with '
            f'a `downsample`/`shortcut` attribute or `has_skip=True`. Register a BlockAdapter for its block class.')
    return blocks


# --- weight-standardized convolutions --------------------------------------------------------------------------------

_WS_CONV_PATHS = {
    'timm.layers.std_conv.StdConv2d', 'timm.layers.std_conv.StdConv2dSame',
    'timm.layers.std_conv.ScaledStdConv2d', 'timm.layers.std_conv.ScaledStdConv2dSame',
}


def is_weight_standardized(conv: nn.Module) -> bool:
    """True when `conv` standardizes its filters (timm StdConv2d / ScaledStdConv2d)."""
    return any(_class_path(c) in _WS_CONV_PATHS for c in type(conv).__mro__)


@torch.no_grad()
def effective_conv_weight(conv: nn.Module) -> torch.Tensor:
    """Filters of `conv` up to a positive per-filter scale, as ``(out_channels, fan_in)``.

    Weight standardization subtracts each filter's mean, which changes its direction, so it is applied here; the
    per-filter scale (std, gain, fan-in) does not change directions and is left out. Weight-normalized convs that
    use torch parametrizations already return their effective ``weight``.
    """
    w = conv.weight.detach().reshape(conv.weight.shape[0], -1).double()
    if is_weight_standardized(conv):
        w = w - w.mean(dim=1, keepdim=True)
    return w


# --- transforms -------------------------------------------------------------------------------------------------------

@torch.no_grad()
def set_unit_gains(model: nn.Module) -> List[str]:
    """Undo zero-initialized residual branches so a signal propagation plot at init is not trivial.

    For every residual block, each zero-init parameter named by its adapter (skip gains, Scaled WS gains of the
    last conv, the last BatchNorm weight of timm ResNet blocks) that is *entirely zero* is set to 1; a zeroed
    conv weight (timm ResNetV2 ``zero_init_last``) is re-drawn with timm's He init (fan-out, ReLU). Non-zero
    (trained) values are left alone, so this is safe on checkpoints. Brock et al.'s plots assume unit branch gains.

    Returns:
        Dotted names of the parameters that were reset.
    """
    reset = []
    for block in find_residual_blocks(model):
        for pname, t in block.adapter.zero_init(block.module):
            if t.numel() == 0 or bool(t.any()):
                continue
            owner = block.module.get_submodule(pname.rsplit('.', 1)[0]) if '.' in pname else block.module
            if isinstance(owner, nn.modules.conv._ConvNd) and pname.endswith('.weight'):
                nn.init.kaiming_normal_(t, mode='fan_out', nonlinearity='relu')
            else:
                t.fill_(1.0)
            reset.append(f'{block.name}.{pname}')
    return reset


@torch.no_grad()
def unscale_nf(model: nn.Module) -> nn.Module:
    """Turn an NF-ResNet into Brock et al.'s unscaled baseline: plain He-initialized convs, no alpha/beta scaling.

    Every weight-standardized conv is replaced by an ``nn.Conv2d`` of the same shape with He (fan-in, ReLU) normal
    weights and zero bias; NF blocks get ``alpha = beta = 1``; activation gains (``gain``/``gamma`` attributes of
    activation wrappers, e.g. timm_nf's ScaledAct, timm's GammaAct) are set to 1. Skip gains are untouched (combine
    with `set_unit_gains`). Changes `model` in place and returns it.
    """
    for block in find_residual_blocks(model):
        if block.adapter.nf_scales:
            block.module.alpha = 1.0
            block.module.beta = 1.0
            block.module.tracks_expected_var = False  # read by nf_expected_variance: nothing is tracked any more
    for parent in list(model.modules()):
        for cname, child in list(parent.named_children()):
            if is_weight_standardized(child):
                conv = nn.Conv2d(
                    child.in_channels, child.out_channels, child.kernel_size, stride=child.stride,
                    padding=child.padding, dilation=child.dilation, groups=child.groups,
                    bias=child.bias is not None, padding_mode=child.padding_mode,
                    device=child.weight.device, dtype=child.weight.dtype)
                if isinstance(child.padding, str):  # 'same' convs keep timm's dynamic padding semantics
                    conv.padding = child.padding
                nn.init.kaiming_normal_(conv.weight, mode='fan_in', nonlinearity='relu')
                if conv.bias is not None:
                    nn.init.zeros_(conv.bias)
                setattr(parent, cname, conv)
            elif 'Act' in type(child).__name__:  # activation wrappers only, not e.g. SE gains
                for attr in ('gain', 'gamma'):
                    if isinstance(getattr(child, attr, None), float):
                        setattr(child, attr, 1.0)
    return model


# Named model transforms, selectable in model specs as ``NAME+transform`` (see `timm_nf.analysis.inputs`).
TRANSFORMS: Dict[str, Callable[[nn.Module], nn.Module]] = {
    'unscaled': unscale_nf,
}


def nf_expected_variance(block: ResidualBlock) -> float:
    """Variance the model expects after NF `block` (Brock et al., Sec. 4): ``(1 at a transition, else 1/beta^2)
    + alpha^2``. NaN for blocks without NF scales."""
    if not block.adapter.nf_scales or not getattr(block.module, 'tracks_expected_var', True):
        return math.nan
    m = block.module
    var_in = 1.0 if block.adapter.shortcut(m) is not None else 1.0 / float(m.beta) ** 2
    return var_in + float(m.alpha) ** 2
