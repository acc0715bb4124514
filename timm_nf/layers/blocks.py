"""The residual skeleton's parts: stems, residual branches, shortcuts and the two residual blocks.

One branch builder serves every family; what differs between families is a `NormScheme` (conv, norm,
activation scaling) and the activation name, never a copied block:

* `PostActBlock`: the original ResNet block (He et al. 2016) as used by Shang, Chiu & Sohn (AAAI 2017):
  ``act(branch(x) + shortcut(x))`` with conv-norm-act inside the branch. CReLU sits inside the branch only
  (their Fig. 1): the identity path and the activation after the addition stay ReLU, every conv keeps its
  number of filters and the conv after a CReLU sees twice the channels (bottleneck: after the first two convs).
* `NFBlock`: the normalization-free pre-activation block of Brock, De & Smith (ICLR 2021):
  ``h + alpha * skip_gain * branch(act(h) * beta)``, with a projection of ``act(h) * beta`` at transitions.
"""
from collections import OrderedDict
from functools import partial
from typing import Callable, List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from timm.layers import DropPath, SEModule

from .activations import channel_mult, check_choice
from .effective_weight import EffectiveWeightConv
from .fold import FoldableSequential, fold_act_gain, fold_conv_bn, move_input_scale, scale_conv_, to_plain_conv
from .norm_scheme import NormScheme

__all__ = [
    'BLOCK_KINDS', 'SHORTCUTS', 'STEMS', 'PostActBlock', 'NFBlock', 'Downsample', 'ZeroPadShortcut',
    'ScaledSigmoid', 'create_attn', 'create_branch', 'create_stem',
]

BLOCK_KINDS = ('basic', 'bottleneck')
# zero_pad: fb.resnet.torch option A (subsample + zero channels); conv: strided 1x1 projection (option B,
# DeepMind NF-ResNet); avg_conv: 2x2 average pool then 1x1 conv (timm NF models, DeepMind NF-RegNet).
SHORTCUTS = ('zero_pad', 'conv', 'avg_conv')
# imagenet: 7x7/2 conv + 3x3/2 max-pool; cifar: 3x3/1 conv; 3x3: 3x3/2 conv (NF-RegNet).
STEMS = ('imagenet', 'cifar', '3x3')


class ScaledSigmoid(nn.Module):
    """``gain * sigmoid(x)``: the NF-RegNet squeeze-excite gate, whose output is rescaled by 2 to keep variance."""

    def __init__(self, gain: float = 2.0):
        super().__init__()
        self.gain = float(gain)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(x) * self.gain


def create_attn(attn_layer: Optional[str], attn_gain: float = 2.0) -> Optional[Callable[[int], nn.Module]]:
    """Factory of the attention module of a branch; only squeeze-excite ('se', reduction 0.5) is used here.

    The NF correction gain is folded into the gate: ``gain * (x * sigmoid(s))`` equals ``x * (gain * sigmoid(s))``
    bit for bit when the gain is a power of two, so timm's NF-RegNet weights give identical outputs.
    """
    if attn_layer is None:
        return None
    check_choice('attn_layer', attn_layer, ('se',))
    return partial(SEModule, rd_ratio=0.5, gate_layer=partial(ScaledSigmoid, gain=attn_gain))


def create_branch(
        kind: str,
        in_chs: int,
        mid_chs: int,
        out_chs: int,
        stride: int,
        scheme: NormScheme,
        act_name: str,
        groups: int = 1,
        preact: bool = False,
        attn: Optional[Callable[[int], nn.Module]] = None,
        last_gain_init: float = 1.0,
) -> FoldableSequential:
    """Residual branch: basic (3x3, 3x3) or bottleneck (1x1, 3x3, 1x1), stride on the 3x3.

    Post-activation branches (`preact=False`) are conv-norm-act-...-conv-norm; pre-activation (NF) branches have
    no norm and start with a conv (their input activation belongs to the block). Attention, if any, follows the
    3x3 conv (NF-RegNet).

    Args:
        kind: 'basic' or 'bottleneck'.
        in_chs: Channels entering the branch (already doubled if a CReLU precedes it).
        mid_chs: Width of the inner convs (basic: the first conv's output).
        out_chs: Channels leaving the branch.
        stride: Stride of the 3x3 conv.
        scheme: Normalization scheme providing conv, norm and activation.
        act_name: Activation between the convs ('relu', 'crelu', 'silu', ...).
        groups: Groups of the 3x3 conv.
        preact: Build an NF (pre-activation) branch.
        attn: Attention module factory applied after the 3x3 conv.
        last_gain_init: Initial WS gain of the last conv (timm zero-initializes NF branches this way).
    """
    check_choice('block', kind, BLOCK_KINDS)
    if kind == 'basic':
        spec = [(mid_chs, 3, stride, 1), (out_chs, 3, 1, 1)]
    else:
        spec = [(mid_chs, 1, 1, 1), (mid_chs, 3, stride, groups), (out_chs, 1, 1, 1)]
    attn_after = 2 if kind == 'bottleneck' else 0
    layers = OrderedDict()
    chs = in_chs
    for idx, (conv_out, kernel, conv_stride, conv_groups) in enumerate(spec, start=1):
        last = idx == len(spec)
        gain_init = last_gain_init if last else 1.0
        layers[f'conv{idx}'] = scheme.conv(
            chs, conv_out, kernel, conv_stride, conv_groups, act_name=act_name, gain_init=gain_init)
        if not preact and scheme.name == 'batchnorm':
            layers[f'norm{idx}'] = scheme.norm(conv_out)
        if attn is not None and idx == attn_after:
            layers['attn'] = attn(conv_out)
        chs = conv_out
        if not last:
            act = scheme.act(act_name, inplace=True)
            # Keep timm's names: act1 is the NF block's pre-activation, so NF branch acts start at act2.
            layers[f'act{idx + 1 if preact else idx}'] = act
            chs = conv_out * channel_mult(act)
    return FoldableSequential(layers)


class Downsample(nn.Module):
    """Projection shortcut: optional 2x2 average pool, 1x1 conv, norm.

    Args:
        in_chs: Input channels.
        out_chs: Output channels.
        stride: Spatial reduction.
        scheme: Normalization scheme providing the conv and the shortcut norm.
        act_name: Activation of the network (only for timm's gamma folding).
        avg_pool: Reduce with a 2x2 average pool (timm NF, 'D' ResNets) instead of a strided 1x1 conv.
    """

    def __init__(self, in_chs: int, out_chs: int, stride: int, scheme: NormScheme, act_name: str, avg_pool: bool):
        super().__init__()
        pooled = avg_pool and stride > 1
        self.pool = nn.AvgPool2d(2, stride, ceil_mode=True, count_include_pad=False) if pooled else nn.Identity()
        self.conv = scheme.conv(in_chs, out_chs, 1, 1 if pooled else stride, act_name=act_name)
        self.norm = scheme.shortcut_norm(out_chs, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.conv(self.pool(x)))

    @torch.no_grad()
    def fuse(self) -> 'Downsample':
        """Fold the norm into a plain conv (eval-mode statistics)."""
        if isinstance(self.norm, nn.BatchNorm2d):
            self.conv, self.norm = fold_conv_bn(self.conv, self.norm), nn.Identity()
        else:
            self.conv = to_plain_conv(self.conv)
        return self


class ZeroPadShortcut(nn.Module):
    """Parameter-free shortcut ("option A", fb.resnet.torch CIFAR models): subsample, then zero-pad channels.

    Args:
        in_chs: Input channels.
        out_chs: Output channels (>= in_chs); the extra channels are zeros.
        stride: Subsampling step.
        norm: Module applied to the subsampled input before padding (BatchNorm for NormProp, else Identity).
    """

    def __init__(self, in_chs: int, out_chs: int, stride: int, norm: nn.Module):
        super().__init__()
        if out_chs < in_chs:
            raise ValueError(f'zero_pad shortcut cannot reduce channels ({in_chs} -> {out_chs}); use shortcut="conv".')
        self.stride = stride
        self.pad = out_chs - in_chs
        self.norm = norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            x = x[:, :, ::self.stride, ::self.stride]
        x = self.norm(x)
        if self.pad > 0:
            x = F.pad(x, (0, 0, 0, 0, 0, self.pad))
        return x


def _drop_path(rate: float) -> nn.Module:
    return DropPath(rate) if rate > 0.0 else nn.Identity()


class PostActBlock(nn.Module):
    """Original (post-activation) residual block: ``act(branch(x) + shortcut(x))``.

    Args:
        kind: 'basic' or 'bottleneck'.
        in_chs: Input channels.
        mid_chs: Inner width.
        out_chs: Output channels.
        stride: Stride of the block.
        scheme: Normalization scheme ('batchnorm', 'none' or 'normprop').
        act_name: Activation inside the branch ('relu' or 'crelu').
        residual_act_name: Activation after the addition (ReLU for CReLU networks: the identity path is untouched;
            the network's last block may end with a CReLU that feeds the classifier, see `ResNetCfg.last_act`).
        shortcut: 'zero_pad' or 'conv' (used only where the shape changes).
        drop_path_rate: Stochastic depth rate of the branch.
    """

    def __init__(
            self,
            kind: str,
            in_chs: int,
            mid_chs: int,
            out_chs: int,
            stride: int,
            scheme: NormScheme,
            act_name: str,
            residual_act_name: str,
            shortcut: str = 'conv',
            drop_path_rate: float = 0.0,
    ):
        super().__init__()
        self.branch = create_branch(kind, in_chs, mid_chs, out_chs, stride, scheme, act_name)
        self.downsample: Optional[nn.Module] = None
        if in_chs != out_chs or stride != 1:
            if shortcut == 'zero_pad':
                self.downsample = ZeroPadShortcut(
                    in_chs, out_chs, stride, scheme.shortcut_norm(in_chs, stride, projection=False))
            else:
                self.downsample = Downsample(
                    in_chs, out_chs, stride, scheme, act_name, avg_pool=shortcut == 'avg_conv')
        self.drop_path = _drop_path(drop_path_rate)
        self.act = scheme.act(residual_act_name, inplace=True, after_addition=True)

    def zero_init_last(self) -> None:
        """Start the branch's last BatchNorm at 0, so that the block begins as its shortcut (timm's ResNets)."""
        norms = [m for m in self.branch if isinstance(m, nn.BatchNorm2d)]
        if norms:
            nn.init.zeros_(norms[-1].weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.act(self.drop_path(self.branch(x)) + shortcut)

    @torch.no_grad()
    def fuse(self) -> 'PostActBlock':
        """Fold BatchNorm into the convs and plain-ize NormProp convs, in place (call in eval mode)."""
        self.branch.fuse()
        if isinstance(self.downsample, Downsample):
            self.downsample.fuse()
        return self


class NFBlock(nn.Module):
    """Normalization-free pre-activation block: ``h + alpha * skip_gain * branch(act(h) * beta)``.

    beta = 1 / sqrt(expected variance of h); at a transition the shortcut projects ``act(h) * beta`` so the
    variance resets (Brock, De & Smith 2021, Sec. 4; DeepMind nfnets/nf_resnet.py).

    Args:
        kind: 'basic' or 'bottleneck'.
        in_chs: Input channels.
        mid_chs: Inner width.
        out_chs: Output channels.
        stride: Stride of the block.
        scheme: A 'scaled_ws' normalization scheme.
        act_name: Activation ('relu', 'crelu', 'silu', 'gelu').
        alpha: Rate at which the variance grows per block.
        beta: Input scaling, 1 / expected std of the input.
        groups: Groups of the 3x3 conv.
        shortcut: 'conv' or 'avg_conv' (used only where the shape changes).
        attn: Attention factory (squeeze-excite after the 3x3 conv for NF-RegNets).
        skip_gain: Learnable scalar on the branch, initialized at 0 (DeepMind); False zero-initializes the last
            conv's gain instead (timm).
        drop_path_rate: Stochastic depth rate of the branch.
    """

    def __init__(
            self,
            kind: str,
            in_chs: int,
            mid_chs: int,
            out_chs: int,
            stride: int,
            scheme: NormScheme,
            act_name: str,
            alpha: float = 0.2,
            beta: float = 1.0,
            groups: int = 1,
            shortcut: str = 'conv',
            attn: Optional[Callable[[int], nn.Module]] = None,
            skip_gain: bool = True,
            drop_path_rate: float = 0.0,
            scalars_in_weights: bool = True,
    ):
        super().__init__()
        self.alpha = alpha
        self.beta = beta
        self.act1 = scheme.act(act_name)  # not in-place: the identity shortcut still needs h
        branch_in = in_chs * channel_mult(self.act1)
        self.downsample: Optional[nn.Module] = None
        if in_chs != out_chs or stride != 1:
            self.downsample = Downsample(branch_in, out_chs, stride, scheme, act_name, avg_pool=shortcut == 'avg_conv')
        self.branch = create_branch(
            kind, branch_in, mid_chs, out_chs, stride, scheme, act_name, groups=groups, preact=True, attn=attn,
            last_gain_init=1.0 if skip_gain else 0.0)
        self.drop_path = _drop_path(drop_path_rate)
        self.skip_gain = nn.Parameter(torch.zeros(())) if skip_gain else None
        # gamma, beta and alpha are constants around convs: carried by the weights they cost a multiply over the
        # weights instead of the activations, forward and backward (exact up to rounding; see effective_weight).
        # timm's form keeps timm's literal multiplies, so that timm's weights give bit-identical outputs.
        self.scalars_in_weights = scalars_in_weights
        if scalars_in_weights:
            self.act1, act1_gain = fold_act_gain(self.act1)
            consumers = [self.branch[0]] + ([self.downsample.conv] if self.downsample is not None else [])
            move_input_scale(act1_gain * beta, *consumers)
            self.branch.fold_gains_()
            last_conv = self.branch[-1]
            if isinstance(last_conv, EffectiveWeightConv):
                last_conv.output_scale *= alpha
            else:
                scale_conv_(last_conv, output_scale=alpha)

    def branch_scale(self) -> float:
        """Constant the branch's output already carries (alpha when it lives in the weights), for measurements."""
        return self.alpha if self.scalars_in_weights else 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act1(x)
        if self.beta != 1.0 and not self.scalars_in_weights:
            out = out * self.beta
        shortcut = x if self.downsample is None else self.downsample(out)
        out = self.drop_path(self.branch(out))
        alpha = 1.0 if self.scalars_in_weights else self.alpha
        if self.skip_gain is not None:
            out = out * (self.skip_gain * alpha)  # one pass over the activations, not two
        elif alpha != 1.0:
            out = out * alpha
        return out + shortcut

    @torch.no_grad()
    def fuse(self) -> 'NFBlock':
        """Fold, in place: WS convs to plain convs, gamma and beta into the convs that read ``act1(h) * beta``,
        the branch's activation gains into the following convs, ``alpha * skip_gain`` into the last conv."""
        self.branch.fuse()  # plain convs carrying whatever scalars their weights already held
        if self.downsample is not None:
            self.downsample.fuse()
        in_folded = self.scalars_in_weights
        self.act1, gain = fold_act_gain(self.act1)
        in_scale = gain * (1.0 if in_folded else self.beta)
        scale_conv_(self.branch[0], weight_scale=in_scale)
        if self.downsample is not None:
            scale_conv_(self.downsample.conv, weight_scale=in_scale)
        self.branch.fold_gains_()
        out_scale = (1.0 if in_folded else self.alpha) * (float(self.skip_gain) if self.skip_gain is not None else 1.0)
        scale_conv_(self.branch[-1], output_scale=out_scale)
        self.alpha, self.beta = 1.0, 1.0
        self.skip_gain = None
        self.scalars_in_weights = False
        return self


def create_stem(
        kind: str,
        in_chans: int,
        out_chs: int,
        scheme: NormScheme,
        act_name: str,
        preact: bool,
) -> Tuple[FoldableSequential, int, str, int]:
    """Stem: 'imagenet' (7x7/2 conv + 3x3/2 max-pool), 'cifar' (3x3/1 conv) or '3x3' (3x3/2 conv).

    Post-activation networks normalize and activate in the stem; pre-activation (NF) stems end at the conv, the
    first block activates.

    Returns:
        The stem, its stride, the name of the module whose output is the stem feature, and that feature's
        reduction.
    """
    check_choice('stem', kind, STEMS)
    kernel, stride = {'imagenet': (7, 2), 'cifar': (3, 1), '3x3': (3, 2)}[kind]
    stem: 'OrderedDict[str, nn.Module]' = OrderedDict()
    stem['conv'] = scheme.conv(in_chans, out_chs, kernel, stride, act_name=act_name)
    feat = 'conv'
    if not preact:
        if scheme.name == 'batchnorm':
            stem['norm'] = scheme.norm(out_chs)
        stem['act'] = scheme.act(act_name, inplace=True)
        feat = 'act'
    feat_reduction = stride
    if kind == 'imagenet':
        stem['pool'] = nn.MaxPool2d(3, stride=2, padding=1)
        stride *= 2
    return FoldableSequential(stem), stride, feat, feat_reduction


def stem_feature_index(stem: nn.Sequential, feat: str) -> int:
    """Position of the stem feature tap among the stem's children."""
    names: List[str] = [n for n, _ in stem.named_children()]
    return names.index(feat)
