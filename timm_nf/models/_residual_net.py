"""The residual network skeleton shared by every timm-nf family.

A variant is data: `ResNetCfg` says the layout (stem, depths, widths, block kind, shortcut) and the study's
choices (normalization scheme, activation, width multiplier, NF constants); `ResidualNet` builds it with the
blocks of `timm_nf.layers` and exposes timm's model API. The family modules (`crelu_resnet`, `normprop_resnet`,
`nf_resnet`, `nf_regnet`) only hold configs, pretrained cfgs and `@register_model` factories.
"""
import contextlib
import re
from dataclasses import dataclass, replace
from typing import Any, Dict, List, Optional, Set, Tuple, Union

import torch
import torch.nn as nn
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.layers import ClassifierHead, calculate_drop_path_rates, get_device_dtype, make_divisible
from timm.models import DefaultCfg, build_model_with_cfg, checkpoint, checkpoint_seq
from timm.models._features import feature_take_indices  # private: timm exports it under no public name

from timm_nf.constants import CIFAR10_MEAN, CIFAR10_STD
from timm_nf.layers import (
    BLOCK_KINDS, NF_NORM, NORMS, SHORTCUTS, NFBlock, NormScheme, PostActBlock, channel_mult, check_choice,
    create_attn, create_stem, stem_feature_index,
)
from timm_nf.layers.norm_scheme import DEFAULT_NORMPROP_CONSTS, NORMPROP_CONSTS, WEIGHT_INITS
from timm_nf.layers.normprop import NORMPROP_VERSIONS
from timm_nf.pretrained import PUBLISHED, missing_weights_error, unavailable_weights_error

__all__ = [
    'ResNetCfg', 'ResidualNet', 'create_residual_net', 'cifar_depths', 'CLASSIC_ACTS', 'NF_ACTS',
    'convert_timm_nfnet_state_dict', 'with_pretrained_tags',
]

CLASSIC_ACTS = ('relu', 'crelu')  # Shang et al.'s activation schemes
NF_ACTS = ('relu', 'crelu', 'silu', 'gelu')


@dataclass(frozen=True)
class ResNetCfg:
    """Architecture of one residual network.

    Fields after `width_mult` only matter for NF networks (`norm='scaled_ws'`).
    """
    depths: Tuple[int, ...]  # blocks per stage
    widths: Tuple[int, ...]  # output channels per stage, before width_mult
    strides: Tuple[int, ...]  # stride of each stage's first block
    block: str = 'basic'  # 'basic' or 'bottleneck'
    stem: str = 'imagenet'  # 'imagenet' (7x7/2 + max-pool), 'cifar' (3x3/1), '3x3' (3x3/2)
    stem_chs: int = 64  # stem output channels, before width_mult
    shortcut: str = 'conv'  # where shapes change: 'zero_pad' (option A), 'conv' (1x1, option B), 'avg_conv'
    bottle_ratio: float = 0.25  # bottleneck inner width / block output width (block input width if reg)
    norm: str = 'batchnorm'  # 'batchnorm', 'none', 'normprop' or 'scaled_ws' (NF)
    act_layer: str = 'relu'  # activation inside the residual branches
    normprop_version: int = 2  # 1 NormProp, 2 NormProp2 (no constants), 3 NormProp3 (gamma fixed at 1/1.21)
    conv_bias: Optional[bool] = None  # None: no bias before BatchNorm, a bias otherwise
    width_mult: float = 1.0  # multiplies stem and stage widths (0.75 gives Shang et al.'s 12-24-48)
    # The choices Shang et al. leave open (docs/REPRODUCTION.md, "Design choices the paper leaves open"); None takes
    # the default decided there.
    weight_init: Optional[str] = None  # 'none' / 'normprop': init of convs and classifier (WEIGHT_INITS)
    zero_init_last: Optional[bool] = None  # 'batchnorm': start each branch's last BatchNorm at 0 (timm) instead of 1
    last_act: Optional[str] = None  # activation after the last addition, feeding the classifier ('crelu': 2C features)
    normprop_consts: Optional[str] = None  # NormProp v1: which activations carry its constants (NORMPROP_CONSTS)
    head_init_scale: Optional[float] = None  # multiplies the classifier's initial weights and bias (timm's name)
    ch_div: int = 1  # round widths to a multiple of this (timm's NF models use 8)
    alpha: float = 0.2  # NF: variance added per block
    skip_gain: bool = True  # NF: zero-init scalar gain on the branch (DeepMind); False: zero-init last conv gain (timm)
    gamma_in_conv: bool = False  # NF: fold the activation gain into every conv as timm does (also the stem)
    ws_eps: float = 1e-5  # NF: epsilon on the weight variance of scaled WS
    group_size: Optional[int] = None  # NF: channels per group of the 3x3 conv (NF-RegNet: 8)
    reg: bool = False  # NF-RegNet: inner width from the block input, expansion 1 in the first block
    attn_layer: Optional[str] = None  # NF: 'se' after the 3x3 conv
    attn_gain: float = 2.0  # NF: gain on the attention output keeping variance
    num_features: int = 0  # NF: final 1x1 conv width before width_mult (0: none)

    @property
    def preact(self) -> bool:
        return self.norm == NF_NORM

    def scheme(self) -> NormScheme:
        return NormScheme(
            self.norm, conv_bias=self.conv_bias, normprop_version=self.normprop_version, ws_eps=self.ws_eps,
            gamma_in_conv=self.gamma_in_conv, weight_init=self.weight_init,
            normprop_consts=self.normprop_consts or DEFAULT_NORMPROP_CONSTS)

    @property
    def residual_act(self) -> str:
        """Activation on the identity path: ReLU in CReLU networks (Shang et al. Fig. 1), else the branch's."""
        return 'relu' if self.act_layer == 'crelu' else self.act_layer

    @property
    def final_act_layer(self) -> str:
        """Activation after the last residual addition (post-activation networks), whose output feeds the head.

        By default the branch activation: a CReLU network ends with a CReLU of the last sum, so that half of the
        classifier's inputs are non-zero (Shang et al. Table 1: "when using CReLU, the NZR is automatically 0.5").
        """
        return self.last_act or self.act_layer

    def chs(self, width: float) -> int:
        return make_divisible(width * self.width_mult, self.ch_div)


def cifar_depths(depth: int) -> Tuple[int, int, int]:
    """Blocks per stage of a CIFAR ResNet of `depth` layers (He et al. 2016: depth = 6n + 2)."""
    if not isinstance(depth, int) or depth < 8 or (depth - 2) % 6:
        raise ValueError(f'depth={depth!r} is not of the form 6n+2 (e.g. 20, 32, 44, 56, 110) for a CIFAR ResNet.')
    n = (depth - 2) // 6
    return n, n, n


class ResidualNet(nn.Module):
    """Residual network of the normalization study: post-activation (BatchNorm, plain, NormProp) or NF.

    Papers: `Exploring Normalization in Deep Residual Networks with Concatenated Rectified Linear Units`
    (Shang, Chiu & Sohn, AAAI 2017) and `Characterizing signal propagation to close the performance gap in
    unnormalized ResNets` (Brock, De & Smith, ICLR 2021, https://arxiv.org/abs/2101.08692).

    Args:
        cfg: Architecture.
        num_classes: Classifier outputs.
        in_chans: Input channels.
        global_pool: Pooling of the head.
        drop_rate: Dropout before the classifier.
        drop_path_rate: Stochastic depth, growing linearly over the blocks.
    """

    def __init__(
            self,
            cfg: ResNetCfg,
            num_classes: int = 1000,
            in_chans: int = 3,
            global_pool: str = 'avg',
            drop_rate: float = 0.0,
            drop_path_rate: float = 0.0,
            device: Optional[Union[str, torch.device]] = None,
            dtype: Optional[torch.dtype] = None,
    ):
        super().__init__()
        _validate(cfg)
        # Build under a device context rather than threading device/dtype through every layer factory: each
        # parameter and buffer (BatchNorm statistics, NormProp's fixed gamma, skip gains) is created on `device`.
        with torch.device(device) if device is not None else contextlib.nullcontext():
            self._build(cfg, num_classes, in_chans, global_pool, drop_rate, drop_path_rate)
        if dtype is not None:
            self.to(dtype=dtype)

    def _build(
            self,
            cfg: ResNetCfg,
            num_classes: int,
            in_chans: int,
            global_pool: str,
            drop_rate: float,
            drop_path_rate: float,
    ) -> None:
        self.cfg = cfg
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.drop_rate = drop_rate
        self.grad_checkpointing = False
        scheme = cfg.scheme()
        act = cfg.act_layer
        residual_act = cfg.residual_act

        stem_chs = cfg.chs(cfg.stem_chs)
        self.stem, stride, stem_feat, stem_reduction = create_stem(
            cfg.stem, in_chans, stem_chs, scheme, residual_act, preact=cfg.preact)
        self.stem_feat_idx = stem_feature_index(self.stem, stem_feat)
        self.feature_info = [dict(num_chs=stem_chs, reduction=stem_reduction, module=f'stem.{stem_feat}')]

        attn = create_attn(cfg.attn_layer, cfg.attn_gain)
        dpr = calculate_drop_path_rates(drop_path_rate, list(cfg.depths), stagewise=True)
        prev_chs = stem_chs
        expected_var = 1.0
        stages = []
        for stage_idx, (depth, width, stage_stride) in enumerate(zip(cfg.depths, cfg.widths, cfg.strides)):
            stride *= stage_stride
            out_chs = cfg.chs(width)
            blocks = []
            for block_idx in range(depth):
                block_stride = stage_stride if block_idx == 0 else 1
                dpr_block = dpr[stage_idx][block_idx]
                if cfg.preact:
                    first = stage_idx == 0 and block_idx == 0
                    mid_chs, groups = _nf_inner_width(cfg, prev_chs, out_chs, first)
                    blocks.append(NFBlock(
                        cfg.block, prev_chs, mid_chs, out_chs, block_stride, scheme, act, alpha=cfg.alpha,
                        beta=expected_var ** -0.5, groups=groups, shortcut=cfg.shortcut, attn=attn,
                        skip_gain=cfg.skip_gain, drop_path_rate=dpr_block, scalars_in_weights=not cfg.gamma_in_conv,
                    ))
                    # The variance resets to 1 after a transition block (its shortcut sees the normalized input),
                    # then grows by alpha^2 per block (Brock et al. 2021; DeepMind nf_resnet.py).
                    if block_idx == 0:
                        expected_var = 1.0
                    expected_var += cfg.alpha ** 2
                else:
                    mid_chs = out_chs
                    if cfg.block == 'bottleneck':
                        mid_chs = make_divisible(out_chs * cfg.bottle_ratio, cfg.ch_div)
                    last = stage_idx == len(cfg.depths) - 1 and block_idx == depth - 1
                    blocks.append(PostActBlock(
                        cfg.block, prev_chs, mid_chs, out_chs, block_stride, scheme, act,
                        cfg.final_act_layer if last else residual_act, shortcut=cfg.shortcut,
                        drop_path_rate=dpr_block,
                    ))
                    out_chs *= channel_mult(blocks[-1].act)  # a CReLU after the last addition doubles the features
                prev_chs = out_chs
            stages.append(nn.Sequential(*blocks))
            self.feature_info.append(dict(num_chs=prev_chs, reduction=stride, module=f'stages.{stage_idx}'))
        self.stages = nn.Sequential(*stages)

        if cfg.num_features:
            self.num_features = cfg.chs(cfg.num_features)
            self.final_conv = scheme.conv(prev_chs, self.num_features, 1, act_name=act)
            self.feature_info[-1] = dict(num_chs=self.num_features, reduction=stride, module='final_conv')
        else:
            self.num_features = prev_chs
            self.final_conv = nn.Identity()
        # NF networks are pre-activation: the last block's output still needs its activation.
        self.final_act = scheme.act(residual_act) if cfg.preact else nn.Identity()
        self.head = ClassifierHead(self.num_features, num_classes, pool_type=global_pool, drop_rate=drop_rate)
        self.head_hidden_size = self.head.num_features
        scheme.init_weights(self)
        if cfg.zero_init_last:
            for m in self.modules():
                if hasattr(m, 'zero_init_last'):
                    m.zero_init_last()
        head_scale = 1.0 if cfg.head_init_scale is None else cfg.head_init_scale
        if head_scale != 1.0 and isinstance(self.head.fc, nn.Linear):
            with torch.no_grad():
                self.head.fc.weight.mul_(head_scale)
                self.head.fc.bias.mul_(head_scale)

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> Dict[str, Any]:
        return dict(
            stem=r'^stem',
            blocks=[(r'^stages\.(\d+)' if coarse else r'^stages\.(\d+)\.(\d+)', None), (r'^final_conv', (99999,))],
        )

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        self.grad_checkpointing = enable

    @torch.jit.ignore
    def no_weight_decay(self) -> Set[str]:
        """WS gains, skip gains, NormProp gammas and biases: scale and shift parameters are not decayed."""
        return {n for n, _ in self.named_parameters() if n.endswith(('.gain', 'skip_gain', '.gamma', '.bias'))}

    @torch.jit.ignore
    def get_classifier(self) -> nn.Module:
        return self.head.fc

    def reset_classifier(self, num_classes: int, global_pool: Optional[str] = None) -> None:
        self.num_classes = num_classes
        self.head.reset(num_classes, global_pool, in_features=self.num_features, **get_device_dtype(self))
        self.head_hidden_size = self.head.num_features

    def forward_intermediates(
            self,
            x: torch.Tensor,
            indices: Optional[Union[int, List[int]]] = None,
            norm: bool = False,
            stop_early: bool = False,
            output_fmt: str = 'NCHW',
            intermediates_only: bool = False,
    ) -> Union[List[torch.Tensor], Tuple[torch.Tensor, List[torch.Tensor]]]:
        """Forward returning intermediate features.

        Args:
            x: Input images.
            indices: Take the last n features if int, all if None, else the listed indices. Index 0 is the stem
                feature, then one per stage; the last is taken after `final_conv` where there is one.
            norm: Unused (no final norm layer).
            stop_early: Stop after the last requested feature.
            output_fmt: Only 'NCHW'.
            intermediates_only: Return only the intermediate features.
        """
        assert output_fmt in ('NCHW',), 'Output shape must be NCHW.'
        intermediates = []
        last_idx = len(self.stages)
        take_indices, max_index = feature_take_indices(last_idx + 1, indices)
        for i, module in enumerate(self.stem):
            x = module(x)
            if i == self.stem_feat_idx and 0 in take_indices:
                intermediates.append(x)
        if torch.jit.is_scripting() or not stop_early:  # can't slice blocks in torchscript
            stages = self.stages
        else:
            stages = self.stages[:max_index]
        for feat_idx, stage in enumerate(stages, start=1):
            if self.grad_checkpointing and not torch.jit.is_scripting():
                x = checkpoint(stage, x)
            else:
                x = stage(x)
            if feat_idx == last_idx:
                x = self.final_conv(x)
            if feat_idx in take_indices:
                intermediates.append(x)
        if intermediates_only:
            return intermediates
        if len(stages) == last_idx:
            x = self.final_act(x)
        return x, intermediates

    def prune_intermediate_layers(
            self,
            indices: Union[int, List[int]] = 1,
            prune_norm: bool = False,
            prune_head: bool = True,
    ) -> List[int]:
        """Drop the layers not needed for the requested intermediates."""
        take_indices, max_index = feature_take_indices(len(self.stages) + 1, indices)
        prune_end = max_index < len(self.stages)
        if prune_end:
            self.final_conv = nn.Identity()
            self.final_act = nn.Identity()
        if max_index == 0:
            self.stem = self.stem[:self.stem_feat_idx + 1]
        self.stages = self.stages[:max_index]
        if prune_end:
            self.num_features = self.head_hidden_size = self.feature_info[max_index]['num_chs']
        if prune_head or prune_end:
            self.reset_classifier(0, '')
        return take_indices

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        if self.grad_checkpointing and not torch.jit.is_scripting():
            x = checkpoint_seq(self.stages, x)
        else:
            x = self.stages(x)
        return self.final_act(self.final_conv(x))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return self.head(x, pre_logits=pre_logits) if pre_logits else self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def _nf_inner_width(cfg: ResNetCfg, in_chs: int, out_chs: int, first: bool) -> Tuple[int, int]:
    """Inner width and groups of an NF block, rounded as timm rounds them.

    ResNets size the bottleneck from the block output (ratio 0.25); RegNets from the block input (expansion 2.25,
    1 for the network's first block). Basic blocks use the output width.
    """
    if cfg.block == 'basic':
        return out_chs, 1
    ratio = 1.0 if cfg.reg and first else cfg.bottle_ratio
    mid_chs = make_divisible((in_chs if cfg.reg else out_chs) * ratio, cfg.ch_div)
    groups = 1
    if cfg.group_size:
        groups = mid_chs // cfg.group_size
        if cfg.group_size % cfg.ch_div == 0:
            mid_chs = cfg.group_size * groups  # whole groups
    return mid_chs, groups


def _check_width_mult(width_mult: Any) -> None:
    if isinstance(width_mult, bool) or not isinstance(width_mult, (int, float)) or width_mult <= 0:
        raise ValueError(f'width_mult={width_mult!r} must be a positive number (e.g. 0.75, 1.5, 2.0).')


def _check_option(name: str, value: Any, choices: Tuple[Any, ...], applies: bool, where: str) -> None:
    """A keyword that only some networks take: None (its default) anywhere, one of `choices` where it applies."""
    if value is None:
        return
    if not applies:
        raise ValueError(f'{name}={value!r} applies only to {where}; leave it out for this model.')
    check_choice(name, value, choices)


def _validate(cfg: ResNetCfg) -> None:
    check_choice('norm', cfg.norm, NORMS + (NF_NORM,))
    check_choice('act_layer', cfg.act_layer, NF_ACTS if cfg.preact else CLASSIC_ACTS)
    check_choice('normprop_version', cfg.normprop_version, NORMPROP_VERSIONS)
    check_choice('block', cfg.block, BLOCK_KINDS)
    check_choice('shortcut', cfg.shortcut, SHORTCUTS[1:] if cfg.preact else SHORTCUTS)
    if cfg.conv_bias not in (None, True, False):
        raise ValueError(f'conv_bias={cfg.conv_bias!r} must be True or False.')
    _check_width_mult(cfg.width_mult)
    _check_option('weight_init', cfg.weight_init, WEIGHT_INITS, cfg.norm in ('none', 'normprop'),
                  "networks without BatchNorm (norm='none' or 'normprop'; BatchNorm networks use MSR init)")
    _check_option('zero_init_last', cfg.zero_init_last, (True, False), cfg.norm == 'batchnorm', "norm='batchnorm'")
    _check_option('last_act', cfg.last_act, CLASSIC_ACTS, not cfg.preact,
                  'post-activation networks (crelu_resnet*, normprop_resnet*)')
    _check_option('normprop_consts', cfg.normprop_consts, NORMPROP_CONSTS,
                  cfg.norm == 'normprop' and cfg.normprop_version == 1,
                  "NormProp version 1 (norm='normprop', normprop_version=1)")
    if cfg.head_init_scale is not None and (isinstance(cfg.head_init_scale, bool) or not isinstance(
            cfg.head_init_scale, (int, float)) or cfg.head_init_scale < 0):
        raise ValueError(f'head_init_scale={cfg.head_init_scale!r} must be a number >= 0 (0 starts the classifier '
                         f'at zero, 1 keeps its init).')
    if not (len(cfg.depths) == len(cfg.widths) == len(cfg.strides)):
        raise ValueError('depths, widths and strides need one entry per stage.')


# Keyword arguments every family factory accepts, so a study's variants are plain data.
STUDY_KWARGS = (
    'act_layer', 'norm', 'normprop_version', 'conv_bias', 'width_mult', 'depth', 'weight_init', 'zero_init_last',
    'last_act', 'normprop_consts', 'head_init_scale', 'shortcut',
)


def create_residual_net(variant: str, pretrained: bool, cfg: ResNetCfg, **kwargs: Any) -> ResidualNet:
    """Build a registered variant, applying the study's keyword arguments to its config.

    Args:
        variant: Registered model name.
        pretrained: Load pretrained weights from the variant's pretrained cfg.
        cfg: The variant's default architecture.
        **kwargs: `act_layer`, `norm`, `normprop_version`, `conv_bias`, `width_mult` (multiplies the variant's
            widths), `depth` (CIFAR layout only, 6n+2), then anything `ResidualNet` or timm's builder takes.
    """
    changes: Dict[str, Any] = {k: kwargs.pop(k) for k in STUDY_KWARGS if k in kwargs}
    if 'norm' in changes and cfg.preact and changes['norm'] != NF_NORM:
        raise ValueError(
            f'norm={changes["norm"]!r} does not apply to {variant}: NF models use scaled weight standardization '
            f"(norm='{NF_NORM}'); use crelu_resnet* or normprop_resnet* for {', '.join(map(repr, NORMS))}.")
    if 'norm' in changes and not cfg.preact:
        check_choice('norm', changes['norm'], NORMS)  # the choices of this family, not the NF one
    if 'width_mult' in changes:
        _check_width_mult(changes['width_mult'])
        changes['width_mult'] = cfg.width_mult * changes['width_mult']
    if 'depth' in changes:
        if cfg.stem != 'cifar':
            raise ValueError(f'depth applies only to CIFAR-layout models; pick the registered name for {variant}.')
        changes['depths'] = cifar_depths(changes.pop('depth'))
    cfg = replace(cfg, **changes)  # ResidualNet validates it
    tag = kwargs.get('pretrained_cfg')  # timm passes the tag of 'name.tag' here
    try:
        return build_model_with_cfg(
            ResidualNet,
            variant,
            pretrained,
            cfg=cfg,
            # One feature per stage plus the stem: CIFAR layouts have 4, not timm's default 5.
            feature_cfg=dict(flatten_sequential=True, out_indices=tuple(range(len(cfg.depths) + 1))),
            **kwargs,
        )
    except Exception as e:
        # Only the two failures of pretrained=True get our one-line errors; anything else is re-raised as it is.
        error = None
        if pretrained and isinstance(e, RuntimeError) and not isinstance(e, OSError) and tag is None:
            error = missing_weights_error(variant, e)  # timm: the bare name's cfg has no weights; name the tags
        elif pretrained:
            # huggingface_hub's offline / not-found / HTTP errors (OSErrors) and its HTTP client's transport errors
            error = unavailable_weights_error(variant, tag if isinstance(tag, str) else None, e)
        if error is None:
            raise
        raise error from e


_TIMM_NF_BRANCH_KEY = re.compile(r'^(stages\.\d+\.\d+\.)(conv\d|attn)\.')


def convert_timm_nfnet_state_dict(state_dict: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Map a state dict of timm's `NormFreeNet` (e.g. `nf_resnet50`, `nf_regnet_b1`) onto `ResidualNet`.

    The only difference in names is that our blocks keep their residual branch in `branch`:
    ``stages.0.1.conv2.weight`` -> ``stages.0.1.branch.conv2.weight``. Build the target with the timm form of the
    config (`nf_resnet_cfg(50, timm_form=True)` / `nf_regnet_cfg('b1', timm_form=True)`) and load strictly.
    """
    return {_TIMM_NF_BRANCH_KEY.sub(r'\1branch.\2.', k): v for k, v in state_dict.items()}


# Layouts shared by the families ---------------------------------------------------------------------------------

# ImageNet ResNets (He et al. 2016): block kind and blocks per stage.
IMAGENET_LAYOUTS: Dict[int, Tuple[str, Tuple[int, ...]]] = {
    18: ('basic', (2, 2, 2, 2)),
    34: ('basic', (3, 4, 6, 3)),
    50: ('bottleneck', (3, 4, 6, 3)),
    101: ('bottleneck', (3, 4, 23, 3)),
    152: ('bottleneck', (3, 8, 36, 3)),
    200: ('bottleneck', (3, 24, 36, 3)),
}


def imagenet_resnet_cfg(depth: int, **kwargs: Any) -> ResNetCfg:
    """ImageNet ResNet-`depth`: 7x7/2 stem + max-pool, widths 64-128-256-512 (x4 for bottlenecks)."""
    check_choice('depth', depth, IMAGENET_LAYOUTS)
    block, depths = IMAGENET_LAYOUTS[depth]
    widths = (64, 128, 256, 512) if block == 'basic' else (256, 512, 1024, 2048)
    return ResNetCfg(depths=depths, widths=widths, strides=(1, 2, 2, 2), block=block, stem='imagenet', **kwargs)


def cifar_resnet_cfg(depth: int, **kwargs: Any) -> ResNetCfg:
    """CIFAR ResNet-`depth` (He et al. 2016): 3x3 stem, three stages of basic blocks, widths 16-32-64.

    Post-activation variants use fb.resnet.torch's parameter-free shortcut (option A) as Shang et al. did.
    """
    kwargs.setdefault('shortcut', 'conv' if kwargs.get('norm') == NF_NORM else 'zero_pad')
    return ResNetCfg(
        depths=cifar_depths(depth), widths=(16, 32, 64), strides=(1, 2, 2), block='basic', stem='cifar',
        stem_chs=16, **kwargs)


# Pretrained cfgs ----------------------------------------------------------------------------------------------

SHANG_2017 = 'Exploring Normalization in Deep Residual Networks with Concatenated Rectified Linear Units'
BROCK_2021 = 'Characterizing signal propagation to close the performance gap in unnormalized ResNets'
NF_PAPER = dict(paper_ids='arXiv:2101.08692', paper_name=BROCK_2021)


def imagenet_pretrained_cfg(**kwargs: Any) -> Dict[str, Any]:
    """Pretrained cfg of an ImageNet-layout model (no weights unless `hf_hub_id` is given)."""
    return {
        'url': '', 'num_classes': 1000, 'input_size': (3, 224, 224), 'pool_size': (7, 7), 'crop_pct': 0.875,
        'interpolation': 'bilinear', 'mean': IMAGENET_DEFAULT_MEAN, 'std': IMAGENET_DEFAULT_STD,
        'first_conv': 'stem.conv', 'classifier': 'head.fc', 'license': 'apache-2.0', 'paper_name': SHANG_2017,
        **kwargs,
    }


def cifar_pretrained_cfg(**kwargs: Any) -> Dict[str, Any]:
    """Pretrained cfg of a CIFAR-layout model: 32x32 input, 10 classes, CIFAR-10 statistics, no crop."""
    return imagenet_pretrained_cfg(**{
        'num_classes': 10, 'input_size': (3, 32, 32), 'pool_size': (8, 8), 'crop_pct': 1.0,
        'mean': CIFAR10_MEAN, 'std': CIFAR10_STD, **kwargs,
    })


def with_pretrained_tags(default_cfgs: Dict[str, DefaultCfg]) -> Dict[str, DefaultCfg]:
    """A family's `generate_default_cfgs` output plus a `<model>.<tag>` cfg for every published weight of its models.

    The published weights are listed as data in `timm_nf.pretrained.PUBLISHED`; each tag cfg is the model's own cfg
    with the entry's Hub id, classes, input size and preprocessing on top. Tags are appended after the
    architecture's own cfg, so that it stays the default: a bare name means the architecture at its natural input
    size, without weights, and weights are reached by explicit tags (`crelu_resnet56.digits`). (timm's
    `generate_default_cfgs` would make the first tag with weights the default instead.)
    """
    for entry in PUBLISHED:
        if entry.model not in default_cfgs:
            continue  # another family's model
        if '.' in entry.model or not entry.tag:
            raise ValueError(f'published weights {entry!r} need a model name without tag and a tag')
        arch = default_cfgs[entry.model]
        own = arch.cfgs['']
        cfg = replace(own, **entry.pretrained_cfg())
        if own.pool_size and tuple(cfg.input_size) != tuple(own.input_size):
            # The final feature map scales with the input (timm's tests read pool_size).
            cfg = replace(cfg, pool_size=tuple(
                p * i // o for p, i, o in zip(own.pool_size, cfg.input_size[1:], own.input_size[1:])))
        arch.tags.append(entry.tag)
        arch.cfgs[entry.tag] = cfg
        arch.is_pretrained = True
    return default_cfgs
