"""Folding for inference, and the WS / NormProp convs it folds.

That eval mode recomputes their weights from the parameters is tested in test_eval_follows_parameters.py.
"""
import pytest
import timm
import torch
import torch.nn as nn
from timm.layers import ScaledStdConv2d as TimmScaledStdConv2d
from timm.utils import reparameterize_model

import timm_nf
from timm_nf import fold_for_inference
from timm_nf.layers import NormPropConv2d, ScaledStdConv2d

FAMILIES = ['crelu_resnet20', 'crelu_resnet56_relu_plain', 'normprop_resnet20', 'normprop_resnet56_v1',
            'normprop_resnet18', 'nf_resnet20', 'nf_resnet56_crelu', 'nf_resnet18', 'nf_regnet_b0_crelu',
            'crelu_resnet50']


def randomize(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random values everywhere (gains, skip gains and BatchNorm statistics included) so that no branch is off."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in list(model.named_parameters()) + list(model.named_buffers()):
            if not p.is_floating_point():
                continue
            if name.endswith(('gain', 'running_var', 'gamma')) or (name.endswith('weight') and p.ndim <= 1):
                p.copy_(torch.rand(p.shape, generator=g) + 0.5)
            elif p.ndim >= 2:
                p.copy_(torch.randn(p.shape, generator=g) * p[0].numel() ** -0.5)
            else:
                p.copy_(torch.randn(p.shape, generator=g) * 0.3)
    return model


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs().max() / a.abs().max()).item()


def image(model: nn.Module, batch: int = 2) -> torch.Tensor:
    size = min(model.pretrained_cfg['input_size'][-1], 64)
    return torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize('name', FAMILIES)
def test_fold_for_inference_keeps_outputs(name):
    model = randomize(timm.create_model(name)).eval()
    x = image(model)
    with torch.no_grad():
        expected = model(x)
        folded = fold_for_inference(model)
        got = folded(x)
        via_timm = reparameterize_model(model)(x)
    assert relative_error(expected, got) <= 1e-5
    assert relative_error(expected, via_timm) <= 1e-5
    kinds = {type(m) for m in folded.modules()}
    assert not kinds & {ScaledStdConv2d, NormPropConv2d, TimmScaledStdConv2d}
    # BatchNorm survives only on NormProp's parameter-free shortcut, where no conv precedes it.
    leftover = [n for n, m in folded.named_modules() if isinstance(m, nn.BatchNorm2d)]
    assert all(n.endswith('downsample.norm') for n in leftover)
    if name.startswith('crelu'):
        assert not leftover
    with torch.no_grad():
        assert torch.equal(model(x), expected)  # the original model is untouched


@pytest.mark.parametrize('name', ['nf_resnet50', 'nf_regnet_b1'])
def test_fold_for_inference_folds_timm_nf_models(name):
    model = randomize(timm.create_model(name)).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected = model(x)
        folded = fold_for_inference(model)
        assert relative_error(expected, folded(x)) <= 1e-5
    assert not any(isinstance(m, TimmScaledStdConv2d) for m in folded.modules())


def test_fuse_returns_plain_conv():
    for conv in (ScaledStdConv2d(4, 6, 3), NormPropConv2d(4, 6, 3, version=1)):
        plain = conv.fuse()
        assert type(plain) is nn.Conv2d
        x = torch.randn(1, 4, 8, 8)
        assert torch.allclose(conv(x), plain(x), atol=1e-6)


def test_eval_mode_with_grad_allows_two_backwards():
    model = randomize(timm.create_model('nf_resnet20')).eval()
    x = image(model)
    for _ in range(2):
        model(x).sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_script_fx_and_compile_match_eager():
    model = randomize(timm.create_model('nf_resnet20')).eval()
    x = image(model)
    with torch.no_grad():
        expected = model(x)
        scripted = torch.jit.script(model)
        assert torch.allclose(scripted(x), expected, atol=1e-6)
        traced = torch.fx.symbolic_trace(model)
        assert torch.allclose(traced(x), expected, atol=1e-6)
        assert any(n.op == 'call_function' and 'batch_norm' in str(n.target) for n in traced.graph.nodes)
        compiled = torch.compile(model, backend='eager')
        assert torch.allclose(compiled(x), expected, atol=1e-6)


def test_nf_constants_live_in_the_conv_weights():
    # gamma (after every activation) and beta scale conv inputs, alpha the last conv's output: all in the weights,
    # so the activations are plain ReLUs and nothing multiplies activation-sized tensors but the skip gain.
    model = timm.create_model('nf_resnet20')
    block = model.stages[1][1]
    gamma = timm_nf.layers.act_gain('relu')
    assert type(block.act1) is nn.ReLU and type(block.branch.act2) is nn.ReLU
    assert block.branch.conv1.input_scale == pytest.approx(gamma * block.beta)
    assert block.branch.conv2.input_scale == pytest.approx(gamma)
    assert block.branch.conv2.output_scale == pytest.approx(0.2)
    assert model.stages[1][0].downsample.conv.input_scale == pytest.approx(gamma * model.stages[1][0].beta)
    # timm's form keeps timm's literal multiplies (bit-identical to timm's NormFreeNet)
    timm_form = timm_nf.ResidualNet(timm_nf.models.nf_resnet_cfg(50, timm_form=True))
    assert not timm_form.stages[0][1].scalars_in_weights and timm_form.stages[0][1].branch.conv1.input_scale == 1.0
