"""NF-RegNets with the study's activations: `nf_regnet_b0_relu` .. `nf_regnet_b5_crelu`.

`Characterizing signal propagation to close the performance gap in unnormalized ResNets`
(Andrew Brock, Soham De, Samuel L. Smith, ICLR 2021, https://arxiv.org/abs/2101.08692).
Official code: google-deepmind/deepmind-research, nfnets/nf_regnet.py.

timm owns `nf_regnet_b0..b5` (SiLU, timm's form); this module adds ReLU and CReLU variants in the paper's form
(gamma-scaled activations, zero-initialized skip gain) with timm's channel rounding (multiples of 8), built by
the shared `ResidualNet`. `nf_regnet_cfg(variant, timm_form=True)` reproduces timm's own models exactly.
"""
from typing import Any, Dict, Tuple

from timm.models import generate_default_cfgs, register_model

from ._residual_net import (
    NF_PAPER, ResidualNet, ResNetCfg, create_residual_net, imagenet_pretrained_cfg, with_pretrained_tags,
)
from .nf_resnet import to_timm_form

__all__ = ['nf_regnet_cfg', 'NF_REGNET_LAYOUTS']

# Base widths, blocks per stage, train / test resolution (Brock et al. 2021, Table 7; DeepMind nf_regnet.py).
NF_REGNET_LAYOUTS: Dict[str, Tuple[Tuple[int, ...], Tuple[int, ...], int, int]] = {
    'b0': ((48, 104, 208, 440), (1, 3, 6, 6), 192, 224),
    'b1': ((48, 104, 208, 440), (2, 4, 7, 7), 224, 256),
    'b2': ((56, 112, 232, 488), (2, 4, 8, 8), 240, 272),
    'b3': ((56, 128, 248, 528), (2, 5, 9, 9), 288, 320),
    'b4': ((64, 144, 288, 616), (2, 6, 11, 11), 320, 384),
    'b5': ((80, 168, 336, 704), (3, 7, 14, 14), 384, 456),
}


def nf_regnet_cfg(variant: str, act_layer: str = 'silu', timm_form: bool = False) -> ResNetCfg:
    """NF-RegNet-`variant` ('b0'..'b5'): 3x3/2 stem, all stages stride 2, expansion 2.25 from the block input,
    group width 8, squeeze-excite (ratio 0.5, gain 2) after the 3x3, width x0.75, final 1x1 conv."""
    widths, depths, _, _ = NF_REGNET_LAYOUTS[variant]
    cfg = ResNetCfg(
        depths=depths, widths=widths, strides=(2, 2, 2, 2), block='bottleneck', stem='3x3', stem_chs=widths[0],
        shortcut='avg_conv', bottle_ratio=2.25, norm='scaled_ws', act_layer=act_layer, width_mult=0.75, ch_div=8,
        group_size=8, reg=True, attn_layer='se', num_features=1280 * widths[-1] // 440,
    )
    return to_timm_form(cfg) if timm_form else cfg


def _create(variant: str, pretrained: bool, act_layer: str, **kwargs: Any) -> ResidualNet:
    size = variant.split('_')[2]
    return create_residual_net(variant, pretrained, nf_regnet_cfg(size, act_layer), **kwargs)


def _cfg(size: str) -> Dict[str, Any]:
    _, _, train_px, test_px = NF_REGNET_LAYOUTS[size]
    pool = (train_px + 31) // 32
    return imagenet_pretrained_cfg(
        input_size=(3, train_px, train_px), test_input_size=(3, test_px, test_px), pool_size=(pool, pool),
        interpolation='bicubic', **NF_PAPER)


default_cfgs = with_pretrained_tags(generate_default_cfgs({
    f'nf_regnet_{size}_{act}': _cfg(size) for size in NF_REGNET_LAYOUTS for act in ('relu', 'crelu')
}))


@register_model
def nf_regnet_b0_relu(pretrained: bool = False, **kwargs: Any) -> ResidualNet:
    """NF-RegNet-B0 with ReLU."""
    return _create('nf_regnet_b0_relu', pretrained, 'relu', **kwargs)


@register_model
def nf_regnet_b0_crelu(pretrained: bool = False, **kwargs: Any) -> ResidualNet:
    """NF-RegNet-B0 with CReLU."""
    return _create('nf_regnet_b0_crelu', pretrained, 'crelu', **kwargs)


@register_model
def nf_regnet_b1_relu(pretrained: bool = False, **kwargs: Any) -> ResidualNet:
    """NF-RegNet-B1 with ReLU."""
    return _create('nf_regnet_b1_relu', pretrained, 'relu', **kwargs)


@register_model
def nf_regnet_b1_crelu(pretrained: bool = False, **kwargs: Any) -> ResidualNet:
    """NF-RegNet-B1 with CReLU."""
    return _create('nf_regnet_b1_crelu', pretrained, 'crelu', **kwargs)


@register_model
def nf_regnet_b2_relu(pretrained: bool = False, **kwargs: Any) -> ResidualNet:
    """NF-RegNet-B2 with ReLU."""
    return _create('nf_regnet_b2_relu', pretrained, 'relu', **kwargs)


@register_model
def nf_regnet_b2_crelu(pretrained: bool = False, **kwargs: Any) -> ResidualNet:
    """NF-RegNet-B2 with CReLU."""
    return _create('nf_regnet_b2_crelu', pretrained, 'crelu', **kwargs)


@register_model
def nf_regnet_b3_relu(pretrained: bool = False, **kwargs: Any) -> ResidualNet:
    """NF-RegNet-B3 with ReLU."""
    return _create('nf_regnet_b3_relu', pretrained, 'relu', **kwargs)


@register_model
def nf_regnet_b3_crelu(pretrained: bool = False, **kwargs: Any) -> ResidualNet:
    """NF-RegNet-B3 with CReLU."""
    return _create('nf_regnet_b3_crelu', pretrained, 'crelu', **kwargs)


@register_model
def nf_regnet_b4_relu(pretrained: bool = False, **kwargs: Any) -> ResidualNet:
    """NF-RegNet-B4 with ReLU."""
    return _create('nf_regnet_b4_relu', pretrained, 'relu', **kwargs)


@register_model
def nf_regnet_b4_crelu(pretrained: bool = False, **kwargs: Any) -> ResidualNet:
    """NF-RegNet-B4 with CReLU."""
    return _create('nf_regnet_b4_crelu', pretrained, 'crelu', **kwargs)


@register_model
def nf_regnet_b5_relu(pretrained: bool = False, **kwargs: Any) -> ResidualNet:
    """NF-RegNet-B5 with ReLU."""
    return _create('nf_regnet_b5_relu', pretrained, 'relu', **kwargs)


@register_model
def nf_regnet_b5_crelu(pretrained: bool = False, **kwargs: Any) -> ResidualNet:
    """NF-RegNet-B5 with CReLU."""
    return _create('nf_regnet_b5_crelu', pretrained, 'crelu', **kwargs)
