"""Eval mode computes what the parameters say, whatever edited them.

The WS / NormProp convs derive their weight from the raw parameters. Whatever changes those parameters (in place
through `.data`, by assigning `.data`, `vector_to_parameters`, `load_state_dict`, a hand-written EMA), an eval-mode
forward under `torch.no_grad()` or `torch.inference_mode()` must give exactly the output of the same model with
autograd on, and of a fresh model built from the edited state dict. Before each edit the model runs in the mode
under test, as validation between training steps does, so that anything a forward pass could keep would be kept.
"""
from contextlib import AbstractContextManager
from functools import partial
from typing import Callable, Dict

import pytest
import timm
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from timm_nf.models import ResidualNet, nf_resnet_cfg

# NormProp convs, and scaled WS convs in NF-ResNets: the paper's form (NF scalars carried by the conv weights) with
# ReLU and CReLU, and timm's form (literal multiplies, gamma in every conv). CIFAR-layout ResNet-8s at 16 px: the
# property is one of each conv, so depth and image size only cost time.
FAMILIES: Dict[str, Callable[[], nn.Module]] = {
    'normprop_resnet8': partial(timm.create_model, 'normprop_resnet20', depth=8),
    'nf_resnet8': partial(timm.create_model, 'nf_resnet20', depth=8),
    'nf_resnet8_crelu': partial(timm.create_model, 'nf_resnet20', depth=8, act_layer='crelu'),
    'nf_resnet8_timm_form': lambda: ResidualNet(nf_resnet_cfg(8, timm_form=True)),
}
MODES: Dict[str, Callable[[], AbstractContextManager]] = {
    'no_grad': torch.no_grad,
    'inference_mode': torch.inference_mode,
}


def noise_like(p: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    return 0.1 * torch.randn(p.shape, generator=gen, dtype=p.dtype)


def edit_data_in_place(model: nn.Module, gen: torch.Generator) -> None:
    for p in model.parameters():
        p.data.mul_(0.9).add_(noise_like(p, gen))


def edit_data_assignment(model: nn.Module, gen: torch.Generator) -> None:
    for p in model.parameters():
        p.data = p.data * 0.9 + noise_like(p, gen)


def edit_vector_to_parameters(model: nn.Module, gen: torch.Generator) -> None:
    params = list(model.parameters())
    vec = parameters_to_vector(params).detach()
    vector_to_parameters(vec * 0.9 + noise_like(vec, gen), params)


def edit_load_state_dict(model: nn.Module, gen: torch.Generator) -> None:
    state = {k: v * 0.9 + noise_like(v, gen) if v.is_floating_point() else v for k, v in model.state_dict().items()}
    model.load_state_dict(state)


EDITS: Dict[str, Callable[[nn.Module, torch.Generator], None]] = {
    'data_in_place': edit_data_in_place,
    'data_assignment': edit_data_assignment,
    'vector_to_parameters': edit_vector_to_parameters,
    'load_state_dict': edit_load_state_dict,
}


def images(seed: int = 1) -> torch.Tensor:
    return torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(seed))


def assert_exact(got: torch.Tensor, expected: torch.Tensor, what: str) -> None:
    assert torch.equal(got, expected), f'{what}: max abs difference {(got - expected).abs().max():.3g}'


def assert_follows_parameters(model: nn.Module, x: torch.Tensor, mode: str, before: torch.Tensor) -> None:
    """`model`'s output in `mode` equals its output with autograd on, which the edit changed."""
    with MODES[mode]():
        got = model(x).clone()  # clone: an inference tensor cannot be compared outside inference mode otherwise
    expected = model(x).detach()
    assert not torch.allclose(before, expected, atol=1e-3)  # the edit reached the output
    assert_exact(got, expected, f'{mode} after the edit vs autograd')


def assert_fresh_model_agrees(model: nn.Module, family: str, x: torch.Tensor) -> None:
    fresh = FAMILIES[family]().eval()
    fresh.load_state_dict(model.state_dict())
    with torch.no_grad():
        assert_exact(fresh(x), model(x), 'a fresh model from the edited state dict vs the edited model')


@pytest.mark.parametrize('edit', list(EDITS))
@pytest.mark.parametrize('family', list(FAMILIES))
def test_eval_output_follows_edited_parameters(family: str, edit: str):
    torch.manual_seed(0)
    model = FAMILIES[family]().eval()
    x, gen = images(), torch.Generator().manual_seed(2)
    for mode in MODES:
        with MODES[mode]():
            before = model(x).clone()  # run in the mode under test first: a validation pass
        EDITS[edit](model, gen)
        assert_follows_parameters(model, x, mode, before)
    assert_fresh_model_agrees(model, family, x)


@pytest.mark.parametrize('family', list(FAMILIES))
def test_hand_written_ema_follows_the_trained_model(family: str):
    # The usual loop: an optimizer trains `model`, the EMA copy is updated through `.data` and validated in eval
    # mode between updates.
    torch.manual_seed(0)
    model, ema = FAMILIES[family](), FAMILIES[family]().eval()
    ema.load_state_dict(model.state_dict())
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    x, train_x, train_y = images(), images(seed=3), torch.tensor([0, 1])
    for mode in MODES:
        with MODES[mode]():
            before = ema(x).clone()
        for _ in range(2):
            opt.zero_grad()
            F.cross_entropy(model(train_x), train_y).backward()
            opt.step()
            for ema_p, p in zip(ema.parameters(), model.parameters()):
                ema_p.data.mul_(0.5).add_(p.data, alpha=0.5)
        assert_follows_parameters(ema, x, mode, before)
    assert_fresh_model_agrees(ema, family, x)
