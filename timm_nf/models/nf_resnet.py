"""NF-ResNets: normalization-free pre-activation ResNets (the names timm's `nfnet` module lacks).

`Characterizing signal propagation to close the performance gap in unnormalized ResNets`
(Andrew Brock, Soham De, Samuel L. Smith, ICLR 2021, https://arxiv.org/abs/2101.08692).
Official code: google-deepmind/deepmind-research, nfnets/nf_resnet.py.

Paper form: ``h + alpha * skip_gain * f(act(h) * beta)`` with scaled weight standardization, gamma-scaled
activations, a strided 1x1 projection of ``act(h) * beta`` at transitions and a zero-initialized scalar skip gain.
timm already registers `nf_resnet26/50/101` in its own form; `nf_resnet_cfg(depth, timm_form=True)` builds that
form with this code (same state dict up to `convert_timm_nfnet_state_dict`, same outputs).
"""
from dataclasses import replace
from typing import Any, Dict

from timm.models import generate_default_cfgs, register_model

from ._residual_net import (
    NF_PAPER, ResidualNet, ResNetCfg, cifar_pretrained_cfg, cifar_resnet_cfg, create_residual_net,
    imagenet_pretrained_cfg, imagenet_resnet_cfg, with_pretrained_tags,
)

__all__ = ['nf_resnet_cfg', 'to_timm_form']


def to_timm_form(cfg: ResNetCfg) -> ResNetCfg:
    """The same NF architecture as timm's `NormFreeNet` builds it: gamma folded into every conv (the stem's
    too), 2x2 avg-pool + 1x1 projections, branch zero-initialized through the last conv's gain, channels
    rounded to multiples of 8."""
    return replace(cfg, gamma_in_conv=True, shortcut='avg_conv', skip_gain=False, ch_div=8)


def nf_resnet_cfg(depth: int, act_layer: str = 'relu', timm_form: bool = False) -> ResNetCfg:
    """NF-ResNet-`depth`: ImageNet layout for 18..200, CIFAR layout (16-32-64) for 6n+2 depths."""
    if depth in (18, 34, 50, 101, 152, 200):
        cfg = imagenet_resnet_cfg(depth, norm='scaled_ws', act_layer=act_layer)
    else:
        cfg = cifar_resnet_cfg(depth, norm='scaled_ws', act_layer=act_layer)
    return to_timm_form(cfg) if timm_form else cfg


def _create(variant: str, pretrained: bool, default_depth: int, **kwargs: Any) -> ResidualNet:
    return create_residual_net(variant, pretrained, nf_resnet_cfg(default_depth), **kwargs)


def _nf_imagenet_cfg(**kwargs: Any) -> Dict[str, Any]:
    return imagenet_pretrained_cfg(interpolation='bicubic', **NF_PAPER, **kwargs)


def _nf_cifar_cfg(**kwargs: Any) -> Dict[str, Any]:
    return cifar_pretrained_cfg(**NF_PAPER, **kwargs)


default_cfgs = with_pretrained_tags(generate_default_cfgs({
    **{f'nf_resnet{d}': _nf_imagenet_cfg() for d in (18, 34, 152, 200)},
    **{f'nf_resnet{d}': _nf_cifar_cfg() for d in (20, 32, 44, 56, 110)},
    **{f'nf_resnet{d}_crelu': _nf_cifar_cfg() for d in (20, 56, 110)},
}))


@register_model
def nf_resnet18(pretrained: bool = False, **kwargs: Any) -> ResidualNet:
    """NF-ResNet-18 (ImageNet, basic blocks)."""
    return _create('nf_resnet18', pretrained, 18, **kwargs)


@register_model
def nf_resnet34(pretrained: bool = False, **kwargs: Any) -> ResidualNet:
    """NF-ResNet-34 (ImageNet, basic blocks)."""
    return _create('nf_resnet34', pretrained, 34, **kwargs)


@register_model
def nf_resnet152(pretrained: bool = False, **kwargs: Any) -> ResidualNet:
    """NF-ResNet-152 (ImageNet, bottlenecks)."""
    return _create('nf_resnet152', pretrained, 152, **kwargs)


@register_model
def nf_resnet200(pretrained: bool = False, **kwargs: Any) -> ResidualNet:
    """NF-ResNet-200 (ImageNet, bottlenecks)."""
    return _create('nf_resnet200', pretrained, 200, **kwargs)


@register_model
def nf_resnet20(pretrained: bool = False, **kwargs: Any) -> ResidualNet:
    """NF-ResNet-20 (CIFAR, 16-32-64)."""
    return _create('nf_resnet20', pretrained, 20, **kwargs)


@register_model
def nf_resnet32(pretrained: bool = False, **kwargs: Any) -> ResidualNet:
    """NF-ResNet-32 (CIFAR, 16-32-64)."""
    return _create('nf_resnet32', pretrained, 32, **kwargs)


@register_model
def nf_resnet44(pretrained: bool = False, **kwargs: Any) -> ResidualNet:
    """NF-ResNet-44 (CIFAR, 16-32-64)."""
    return _create('nf_resnet44', pretrained, 44, **kwargs)


@register_model
def nf_resnet56(pretrained: bool = False, **kwargs: Any) -> ResidualNet:
    """NF-ResNet-56 (CIFAR, 16-32-64), ReLU."""
    return _create('nf_resnet56', pretrained, 56, **kwargs)


@register_model
def nf_resnet110(pretrained: bool = False, **kwargs: Any) -> ResidualNet:
    """NF-ResNet-110 (CIFAR, 16-32-64), ReLU."""
    return _create('nf_resnet110', pretrained, 110, **kwargs)


@register_model
def nf_resnet20_crelu(pretrained: bool = False, **kwargs: Any) -> ResidualNet:
    """NF-ResNet-20 (CIFAR) with CReLU inside the branches."""
    return _create('nf_resnet20_crelu', pretrained, 20, **{'act_layer': 'crelu', **kwargs})


@register_model
def nf_resnet56_crelu(pretrained: bool = False, **kwargs: Any) -> ResidualNet:
    """NF-ResNet-56 (CIFAR) with CReLU inside the branches."""
    return _create('nf_resnet56_crelu', pretrained, 56, **{'act_layer': 'crelu', **kwargs})


@register_model
def nf_resnet110_crelu(pretrained: bool = False, **kwargs: Any) -> ResidualNet:
    """NF-ResNet-110 (CIFAR) with CReLU inside the branches."""
    return _create('nf_resnet110_crelu', pretrained, 110, **{'act_layer': 'crelu', **kwargs})
