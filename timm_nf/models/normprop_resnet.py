"""NormProp ResNets: Normalization Propagation in place of BatchNorm.

`Exploring Normalization in Deep Residual Networks with Concatenated Rectified Linear Units`
(Wenling Shang, Justin Chiu, Kihyuk Sohn, AAAI 2017), building on `Normalization Propagation` (Arpit et al. 2016).

Every conv is a `NormPropConv2d`; BatchNorm remains only on the identity path where the spatial size is reduced
(their footnote 2); the original NormProp (version 1) puts its constants after the activations that follow its
convs, not after the residual addition (`normprop_consts`, decided by measurement in docs/REPRODUCTION.md), and
CReLU networks end with a CReLU of the last sum (`last_act`). Defaults are the paper's best version per setting:
NormProp2 for the CIFAR layout, NormProp3 (gamma fixed at 1/1.21) for ImageNet, with ReLU. `normprop_version` and
`act_layer='crelu'` give the other rows of Tables 2 and 4; the rows that get published weights at the study's
depths (20, 56, 110) also have names of their own: `_v1` / `_v3` (version 1 / 3 instead of 2), `_crelu` (CReLU instead
of ReLU). Mixed precision: use bfloat16 for version 1 (`--amp-dtype bfloat16`); at depth 110 its activations reach
about 1e4 at init, a sixth of float16's maximum (65504).
"""
from typing import Any, Dict

from timm.models import generate_default_cfgs, register_model

from ._residual_net import (
    ResidualNet, cifar_pretrained_cfg, cifar_resnet_cfg, create_residual_net, imagenet_pretrained_cfg,
    imagenet_resnet_cfg, with_pretrained_tags,
)

__all__ = ['ROWS']

ROWS: Dict[str, Dict[str, Any]] = {
    '': dict(),  # NormProp2 ReLU
    '_v1': dict(normprop_version=1),  # the original NormProp with its constants
    '_v3': dict(normprop_version=3),  # extension from the ImageNet table: gamma fixed
    '_crelu': dict(act_layer='crelu'),  # NormProp2 CReLU
    '_v3_crelu': dict(normprop_version=3, act_layer='crelu'),
}


def _create(
        variant: str, pretrained: bool, default_depth: int, cifar: bool, row: str = '', **kwargs: Any,
) -> ResidualNet:
    if cifar:
        cfg = cifar_resnet_cfg(default_depth, norm='normprop', normprop_version=2)
    else:
        cfg = imagenet_resnet_cfg(default_depth, norm='normprop', normprop_version=3)
    return create_residual_net(variant, pretrained, cfg, **{**ROWS[row], **kwargs})


default_cfgs = with_pretrained_tags(generate_default_cfgs({
    **{f'normprop_resnet{d}': imagenet_pretrained_cfg() for d in (18, 34, 50, 101)},
    **{f'normprop_resnet{d}': cifar_pretrained_cfg() for d in (20, 32, 44, 56, 110)},
    **{f'normprop_resnet{d}{row}': cifar_pretrained_cfg() for d in (20, 56, 110) for row in ROWS if row},
}))


@register_model
def normprop_resnet18(pretrained: bool = False, **kwargs: Any) -> ResidualNet:
    """NormProp3 ResNet-18 (ImageNet)."""
    return _create('normprop_resnet18', pretrained, 18, cifar=False, **kwargs)


@register_model
def normprop_resnet34(pretrained: bool = False, **kwargs: Any) -> ResidualNet:
    """NormProp3 ResNet-34 (ImageNet, Table 4)."""
    return _create('normprop_resnet34', pretrained, 34, cifar=False, **kwargs)


@register_model
def normprop_resnet50(pretrained: bool = False, **kwargs: Any) -> ResidualNet:
    """NormProp3 ResNet-50 (ImageNet, Table 4)."""
    return _create('normprop_resnet50', pretrained, 50, cifar=False, **kwargs)


@register_model
def normprop_resnet101(pretrained: bool = False, **kwargs: Any) -> ResidualNet:
    """NormProp3 ResNet-101 (ImageNet)."""
    return _create('normprop_resnet101', pretrained, 101, cifar=False, **kwargs)


@register_model
def normprop_resnet20(pretrained: bool = False, **kwargs: Any) -> ResidualNet:
    """NormProp2 ResNet-20 (CIFAR, 16-32-64)."""
    return _create('normprop_resnet20', pretrained, 20, cifar=True, **kwargs)


@register_model
def normprop_resnet32(pretrained: bool = False, **kwargs: Any) -> ResidualNet:
    """NormProp2 ResNet-32 (CIFAR, 16-32-64)."""
    return _create('normprop_resnet32', pretrained, 32, cifar=True, **kwargs)


@register_model
def normprop_resnet44(pretrained: bool = False, **kwargs: Any) -> ResidualNet:
    """NormProp2 ResNet-44 (CIFAR, 16-32-64)."""
    return _create('normprop_resnet44', pretrained, 44, cifar=True, **kwargs)


@register_model
def normprop_resnet56(pretrained: bool = False, **kwargs: Any) -> ResidualNet:
    """NormProp2 ResNet-56 (CIFAR, 16-32-64)."""
    return _create('normprop_resnet56', pretrained, 56, cifar=True, **kwargs)


@register_model
def normprop_resnet110(pretrained: bool = False, **kwargs: Any) -> ResidualNet:
    """NormProp2 ResNet-110 (CIFAR): Table 2 row "NormProp2 ReLU"."""
    return _create('normprop_resnet110', pretrained, 110, cifar=True, **kwargs)


@register_model
def normprop_resnet20_v1(pretrained: bool = False, **kwargs: Any) -> ResidualNet:
    """Original NormProp ReLU ResNet-20 (with NormProp's constants)."""
    return _create('normprop_resnet20_v1', pretrained, 20, cifar=True, row='_v1', **kwargs)


@register_model
def normprop_resnet20_v3(pretrained: bool = False, **kwargs: Any) -> ResidualNet:
    """NormProp3 ReLU ResNet-20 (gamma fixed at 1/1.21)."""
    return _create('normprop_resnet20_v3', pretrained, 20, cifar=True, row='_v3', **kwargs)


@register_model
def normprop_resnet20_crelu(pretrained: bool = False, **kwargs: Any) -> ResidualNet:
    """NormProp2 CReLU ResNet-20."""
    return _create('normprop_resnet20_crelu', pretrained, 20, cifar=True, row='_crelu', **kwargs)


@register_model
def normprop_resnet20_v3_crelu(pretrained: bool = False, **kwargs: Any) -> ResidualNet:
    """NormProp3 CReLU ResNet-20."""
    return _create('normprop_resnet20_v3_crelu', pretrained, 20, cifar=True, row='_v3_crelu', **kwargs)


@register_model
def normprop_resnet56_v1(pretrained: bool = False, **kwargs: Any) -> ResidualNet:
    """Original NormProp ReLU ResNet-56 (with NormProp's constants)."""
    return _create('normprop_resnet56_v1', pretrained, 56, cifar=True, row='_v1', **kwargs)


@register_model
def normprop_resnet56_v3(pretrained: bool = False, **kwargs: Any) -> ResidualNet:
    """NormProp3 ReLU ResNet-56 (gamma fixed at 1/1.21)."""
    return _create('normprop_resnet56_v3', pretrained, 56, cifar=True, row='_v3', **kwargs)


@register_model
def normprop_resnet56_crelu(pretrained: bool = False, **kwargs: Any) -> ResidualNet:
    """NormProp2 CReLU ResNet-56."""
    return _create('normprop_resnet56_crelu', pretrained, 56, cifar=True, row='_crelu', **kwargs)


@register_model
def normprop_resnet56_v3_crelu(pretrained: bool = False, **kwargs: Any) -> ResidualNet:
    """NormProp3 CReLU ResNet-56."""
    return _create('normprop_resnet56_v3_crelu', pretrained, 56, cifar=True, row='_v3_crelu', **kwargs)


@register_model
def normprop_resnet110_v1(pretrained: bool = False, **kwargs: Any) -> ResidualNet:
    """Original NormProp ReLU ResNet-110: Table 2 row "NormProp ReLU"."""
    return _create('normprop_resnet110_v1', pretrained, 110, cifar=True, row='_v1', **kwargs)


@register_model
def normprop_resnet110_v3(pretrained: bool = False, **kwargs: Any) -> ResidualNet:
    """NormProp3 ReLU ResNet-110."""
    return _create('normprop_resnet110_v3', pretrained, 110, cifar=True, row='_v3', **kwargs)


@register_model
def normprop_resnet110_crelu(pretrained: bool = False, **kwargs: Any) -> ResidualNet:
    """NormProp2 CReLU ResNet-110: Table 2 row "NormProp2 CReLU"."""
    return _create('normprop_resnet110_crelu', pretrained, 110, cifar=True, row='_crelu', **kwargs)


@register_model
def normprop_resnet110_v3_crelu(pretrained: bool = False, **kwargs: Any) -> ResidualNet:
    """NormProp3 CReLU ResNet-110."""
    return _create('normprop_resnet110_v3_crelu', pretrained, 110, cifar=True, row='_v3_crelu', **kwargs)
