"""CReLU ResNets (and their ReLU / plain baselines).

`Exploring Normalization in Deep Residual Networks with Concatenated Rectified Linear Units`
(Wenling Shang, Justin Chiu, Kihyuk Sohn, AAAI 2017). Original code built on fb.resnet.torch.

Default: BatchNorm with CReLU inside every block (Fig. 1), the network ending with a CReLU of the last residual sum
whose 2C features feed the classifier (Table 1's non-zero ratio of exactly 0.5; `last_act`). Networks without
BatchNorm take Torch7's default init (`weight_init`). Both are choices the paper leaves open, decided by measurement
in docs/REPRODUCTION.md. The study's other rows are keyword arguments of the same factories (`act_layer='relu'`,
`norm='none'`, `conv_bias=False`, `width_mult=2.0`), and the rows that get
published weights at the study's depths (20, 56, 110) also have names of their own, whose suffix says how they
depart from the default: `_relu` (ReLU instead of CReLU), `_plain` (no normalization), `_nobias` (convs without
bias), `_x2` (double width).
"""
from typing import Any, Dict

from timm.models import generate_default_cfgs, register_model

from ._residual_net import (
    ResidualNet, cifar_pretrained_cfg, cifar_resnet_cfg, create_residual_net, imagenet_pretrained_cfg,
    imagenet_resnet_cfg, with_pretrained_tags,
)

__all__ = ['ROWS']

# Table 2 rows of Shang et al. as keyword arguments of this family (NormProp rows live in normprop_resnet).
ROWS: Dict[str, Dict[str, Any]] = {
    '': dict(),  # BatchNorm CReLU
    '_plain': dict(norm='none'),  # plain CReLU, conv bias
    '_plain_nobias': dict(norm='none', conv_bias=False),
    '_relu': dict(act_layer='relu'),  # BatchNorm ReLU: the baseline
    '_relu_x2': dict(act_layer='relu', width_mult=2.0),  # BatchNorm ReLU, double width
    '_relu_plain': dict(act_layer='relu', norm='none'),
    '_relu_plain_nobias': dict(act_layer='relu', norm='none', conv_bias=False),
}


def _create(
        variant: str, pretrained: bool, default_depth: int, cifar: bool, row: str = '', **kwargs: Any,
) -> ResidualNet:
    make_cfg = cifar_resnet_cfg if cifar else imagenet_resnet_cfg
    cfg = make_cfg(default_depth, act_layer='crelu')
    return create_residual_net(variant, pretrained, cfg, **{**ROWS[row], **kwargs})


default_cfgs = with_pretrained_tags(generate_default_cfgs({
    **{f'crelu_resnet{d}': imagenet_pretrained_cfg() for d in (18, 34, 50, 101, 152)},
    **{f'crelu_resnet{d}': cifar_pretrained_cfg() for d in (20, 32, 44, 56, 110)},
    **{f'crelu_resnet{d}{row}': cifar_pretrained_cfg() for d in (20, 56, 110) for row in ROWS if row},
}))


@register_model
def crelu_resnet18(pretrained: bool = False, **kwargs: Any) -> ResidualNet:
    """CReLU ResNet-18 (ImageNet), BatchNorm."""
    return _create('crelu_resnet18', pretrained, 18, cifar=False, **kwargs)


@register_model
def crelu_resnet34(pretrained: bool = False, **kwargs: Any) -> ResidualNet:
    """CReLU ResNet-34 (ImageNet), BatchNorm (Table 4)."""
    return _create('crelu_resnet34', pretrained, 34, cifar=False, **kwargs)


@register_model
def crelu_resnet50(pretrained: bool = False, **kwargs: Any) -> ResidualNet:
    """CReLU ResNet-50 (ImageNet), BatchNorm, CReLU after the first two convs of each bottleneck (Table 4)."""
    return _create('crelu_resnet50', pretrained, 50, cifar=False, **kwargs)


@register_model
def crelu_resnet101(pretrained: bool = False, **kwargs: Any) -> ResidualNet:
    """CReLU ResNet-101 (ImageNet), BatchNorm (Table 4)."""
    return _create('crelu_resnet101', pretrained, 101, cifar=False, **kwargs)


@register_model
def crelu_resnet152(pretrained: bool = False, **kwargs: Any) -> ResidualNet:
    """CReLU ResNet-152 (ImageNet), BatchNorm."""
    return _create('crelu_resnet152', pretrained, 152, cifar=False, **kwargs)


@register_model
def crelu_resnet20(pretrained: bool = False, **kwargs: Any) -> ResidualNet:
    """CReLU ResNet-20 (CIFAR, 16-32-64), BatchNorm."""
    return _create('crelu_resnet20', pretrained, 20, cifar=True, **kwargs)


@register_model
def crelu_resnet32(pretrained: bool = False, **kwargs: Any) -> ResidualNet:
    """CReLU ResNet-32 (CIFAR, 16-32-64), BatchNorm."""
    return _create('crelu_resnet32', pretrained, 32, cifar=True, **kwargs)


@register_model
def crelu_resnet44(pretrained: bool = False, **kwargs: Any) -> ResidualNet:
    """CReLU ResNet-44 (CIFAR, 16-32-64), BatchNorm."""
    return _create('crelu_resnet44', pretrained, 44, cifar=True, **kwargs)


@register_model
def crelu_resnet56(pretrained: bool = False, **kwargs: Any) -> ResidualNet:
    """CReLU ResNet-56 (CIFAR, 16-32-64), BatchNorm."""
    return _create('crelu_resnet56', pretrained, 56, cifar=True, **kwargs)


@register_model
def crelu_resnet110(pretrained: bool = False, **kwargs: Any) -> ResidualNet:
    """CReLU ResNet-110 (CIFAR, 16-32-64), BatchNorm: Table 2 row "BatchNorm CReLU"."""
    return _create('crelu_resnet110', pretrained, 110, cifar=True, **kwargs)


@register_model
def crelu_resnet20_plain(pretrained: bool = False, **kwargs: Any) -> ResidualNet:
    """Plain (no normalization) CReLU ResNet-20 with conv bias."""
    return _create('crelu_resnet20_plain', pretrained, 20, cifar=True, row='_plain', **kwargs)


@register_model
def crelu_resnet20_plain_nobias(pretrained: bool = False, **kwargs: Any) -> ResidualNet:
    """Plain (no normalization) CReLU ResNet-20 without conv bias."""
    return _create('crelu_resnet20_plain_nobias', pretrained, 20, cifar=True, row='_plain_nobias', **kwargs)


@register_model
def crelu_resnet20_relu(pretrained: bool = False, **kwargs: Any) -> ResidualNet:
    """BatchNorm ReLU ResNet-20 (the baseline)."""
    return _create('crelu_resnet20_relu', pretrained, 20, cifar=True, row='_relu', **kwargs)


@register_model
def crelu_resnet20_relu_x2(pretrained: bool = False, **kwargs: Any) -> ResidualNet:
    """BatchNorm ReLU ResNet-20 with double width (32-64-128)."""
    return _create('crelu_resnet20_relu_x2', pretrained, 20, cifar=True, row='_relu_x2', **kwargs)


@register_model
def crelu_resnet20_relu_plain(pretrained: bool = False, **kwargs: Any) -> ResidualNet:
    """Plain (no normalization) ReLU ResNet-20 with conv bias."""
    return _create('crelu_resnet20_relu_plain', pretrained, 20, cifar=True, row='_relu_plain', **kwargs)


@register_model
def crelu_resnet20_relu_plain_nobias(pretrained: bool = False, **kwargs: Any) -> ResidualNet:
    """Plain (no normalization) ReLU ResNet-20 without conv bias."""
    return _create('crelu_resnet20_relu_plain_nobias', pretrained, 20, cifar=True, row='_relu_plain_nobias', **kwargs)


@register_model
def crelu_resnet56_plain(pretrained: bool = False, **kwargs: Any) -> ResidualNet:
    """Plain (no normalization) CReLU ResNet-56 with conv bias."""
    return _create('crelu_resnet56_plain', pretrained, 56, cifar=True, row='_plain', **kwargs)


@register_model
def crelu_resnet56_plain_nobias(pretrained: bool = False, **kwargs: Any) -> ResidualNet:
    """Plain (no normalization) CReLU ResNet-56 without conv bias."""
    return _create('crelu_resnet56_plain_nobias', pretrained, 56, cifar=True, row='_plain_nobias', **kwargs)


@register_model
def crelu_resnet56_relu(pretrained: bool = False, **kwargs: Any) -> ResidualNet:
    """BatchNorm ReLU ResNet-56 (the baseline)."""
    return _create('crelu_resnet56_relu', pretrained, 56, cifar=True, row='_relu', **kwargs)


@register_model
def crelu_resnet56_relu_x2(pretrained: bool = False, **kwargs: Any) -> ResidualNet:
    """BatchNorm ReLU ResNet-56 with double width (32-64-128)."""
    return _create('crelu_resnet56_relu_x2', pretrained, 56, cifar=True, row='_relu_x2', **kwargs)


@register_model
def crelu_resnet56_relu_plain(pretrained: bool = False, **kwargs: Any) -> ResidualNet:
    """Plain (no normalization) ReLU ResNet-56 with conv bias."""
    return _create('crelu_resnet56_relu_plain', pretrained, 56, cifar=True, row='_relu_plain', **kwargs)


@register_model
def crelu_resnet56_relu_plain_nobias(pretrained: bool = False, **kwargs: Any) -> ResidualNet:
    """Plain (no normalization) ReLU ResNet-56 without conv bias."""
    return _create('crelu_resnet56_relu_plain_nobias', pretrained, 56, cifar=True, row='_relu_plain_nobias', **kwargs)


@register_model
def crelu_resnet110_plain(pretrained: bool = False, **kwargs: Any) -> ResidualNet:
    """Plain (no normalization) CReLU ResNet-110 with conv bias: Table 2 row "Plain CReLU"."""
    return _create('crelu_resnet110_plain', pretrained, 110, cifar=True, row='_plain', **kwargs)


@register_model
def crelu_resnet110_plain_nobias(pretrained: bool = False, **kwargs: Any) -> ResidualNet:
    """Plain CReLU ResNet-110 without conv bias: Table 2 row "Plain CReLU (no bias)"."""
    return _create('crelu_resnet110_plain_nobias', pretrained, 110, cifar=True, row='_plain_nobias', **kwargs)


@register_model
def crelu_resnet110_relu(pretrained: bool = False, **kwargs: Any) -> ResidualNet:
    """BatchNorm ReLU ResNet-110: Table 2 row "BatchNorm ReLU"."""
    return _create('crelu_resnet110_relu', pretrained, 110, cifar=True, row='_relu', **kwargs)


@register_model
def crelu_resnet110_relu_x2(pretrained: bool = False, **kwargs: Any) -> ResidualNet:
    """BatchNorm ReLU ResNet-110 with double width: Table 2 row "BatchNorm ReLU (double)"."""
    return _create('crelu_resnet110_relu_x2', pretrained, 110, cifar=True, row='_relu_x2', **kwargs)


@register_model
def crelu_resnet110_relu_plain(pretrained: bool = False, **kwargs: Any) -> ResidualNet:
    """Plain ReLU ResNet-110 with conv bias: Table 2 row "Plain ReLU"."""
    return _create('crelu_resnet110_relu_plain', pretrained, 110, cifar=True, row='_relu_plain', **kwargs)


@register_model
def crelu_resnet110_relu_plain_nobias(pretrained: bool = False, **kwargs: Any) -> ResidualNet:
    """Plain ReLU ResNet-110 without conv bias: Table 2 row "Plain ReLU (no bias)"."""
    return _create(
        'crelu_resnet110_relu_plain_nobias', pretrained, 110, cifar=True, row='_relu_plain_nobias', **kwargs)
