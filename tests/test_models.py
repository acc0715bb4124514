"""The model zoo: registry, shapes, parameter counts, the papers' structure, timm's API, and bad input."""
import re
import subprocess
import sys

import pytest
import timm
import torch
import torch.nn as nn

import timm_nf
from timm_nf.layers import CReLU, NormPropConv2d, ScaledAct
from timm_nf.models import ResidualNet

CIFAR_DEPTHS = (20, 32, 44, 56, 110)
REQUIRED = {
    'crelu_resnet*': [f'crelu_resnet{d}' for d in (18, 34, 50, 101, 152, *CIFAR_DEPTHS)],
    'normprop_resnet*': [f'normprop_resnet{d}' for d in (18, 34, 50, 101, *CIFAR_DEPTHS)],
    'nf_resnet*': [f'nf_resnet{d}' for d in (18, 34, 152, 200, *CIFAR_DEPTHS)] + ['nf_resnet26', 'nf_resnet50'],
    'nf_regnet*': [f'nf_regnet_b{i}_{a}' for i in range(6) for a in ('relu', 'crelu')] + ['nf_regnet_b1'],
}
# One small model per family and layout, run at reduced resolution where the layout allows it.
SMALL = ['crelu_resnet20', 'normprop_resnet20', 'nf_resnet20', 'crelu_resnet18', 'normprop_resnet18', 'nf_resnet18',
         'nf_regnet_b0_crelu']


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def small_input(model: nn.Module, batch: int = 2) -> torch.Tensor:
    size = model.pretrained_cfg['input_size'][-1]
    return torch.randn(batch, 3, min(size, 64), min(size, 64))


@pytest.mark.parametrize('pattern', list(REQUIRED))
def test_registry_lists_required_names(pattern):
    names = set(timm.list_models(pattern))
    assert set(REQUIRED[pattern]) <= names


def test_import_overwrites_nothing_and_keeps_timm_models():
    # A fresh interpreter, warnings as errors: timm warns "Overwriting ..." if a name is registered twice. timm is
    # imported first, with warnings as usual: older timm releases warn on import under newer torch (timm 1.0.21's
    # hrnet under torch 2.14: `torch.jit.interface` is deprecated), which says nothing about timm_nf.
    code = (
        'import timm\n'
        'import warnings; warnings.simplefilter("error")\n'
        'import timm_nf\n'
        'from timm.models.nfnet import NormFreeNet\n'
        'for name in ("nf_regnet_b1", "nf_resnet50", "nf_resnet26", "nf_regnet_b0"):\n'
        '    assert type(timm.create_model(name)) is NormFreeNet, name\n'
        'cfg = timm.models.get_pretrained_cfg("nf_regnet_b1")\n'
        'assert (cfg.tag, cfg.hf_hub_id) == ("ra2_in1k", "timm/nf_regnet_b1.ra2_in1k"), cfg\n'
        'assert timm.list_pretrained("nf_regnet_b1*") == ["nf_regnet_b1.ra2_in1k"]\n'
    )
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert 'Overwriting' not in out.stderr


@pytest.mark.parametrize('name', SMALL)
def test_forward_shape_and_backward_step(name):
    model = timm.create_model(name, num_classes=7)
    x = small_input(model)
    out = model(x)
    assert out.shape == (2, 7)
    out.logsumexp(1).mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


def test_cifar_output_shapes_all_depths():
    for fam in ('crelu_resnet', 'normprop_resnet', 'nf_resnet'):
        for depth in (20, 32):
            model = timm.create_model(f'{fam}{depth}').eval()
            assert model(torch.randn(1, 3, 32, 32)).shape == (1, 10)
            assert model.forward_features(torch.randn(1, 3, 32, 32)).shape[-2:] == (8, 8)


@pytest.mark.parametrize('name,expected', [
    # He et al. 2016 (Table 6): ResNet-20 0.27M, ResNet-110 1.7M with the parameter-free shortcut.
    ('crelu_resnet20', 0.27e6),
    ('crelu_resnet110', 1.7e6),
])
def test_cifar_bn_relu_parameter_counts_match_he_et_al(name, expected):
    model = timm.create_model(name, act_layer='relu')
    assert abs(n_params(model) - expected) / expected < 0.03


@pytest.mark.parametrize('ours,ref', [('crelu_resnet18', 'resnet18'), ('crelu_resnet50', 'resnet50')])
def test_imagenet_bn_relu_parameter_counts_equal_timm_resnet(ours, ref):
    assert n_params(timm.create_model(ours, act_layer='relu')) == n_params(timm.create_model(ref))


def test_crelu_is_larger_and_reduced_width_matches_relu():
    relu = n_params(timm.create_model('crelu_resnet110', act_layer='relu'))
    crelu = n_params(timm.create_model('crelu_resnet110'))
    # The conv after each CReLU sees twice the channels: half the branch convs double, about 1.5x in total.
    assert 1.4 < crelu / relu < 1.6
    # Table 3: CReLU at 12-24-48 is compared with ReLU at 16-32-64 at a similar size.
    small = n_params(timm.create_model('crelu_resnet110', width_mult=0.75))
    assert 0.8 < small / relu < 1.0


def test_width_mult_gives_paper_widths():
    for mult, widths in ((0.75, (12, 24, 48)), (1.5, (24, 48, 96)), (2.0, (32, 64, 128))):
        model = timm.create_model('crelu_resnet20', width_mult=mult)
        assert tuple(stage[0].branch.conv1.out_channels for stage in model.stages) == widths
        assert model.stem.conv.out_channels == widths[0]
        # the last stage's features are a CReLU of its sum: twice its width
        assert tuple(info['num_chs'] for info in model.feature_info[1:]) == widths[:2] + (2 * widths[2],)


def test_crelu_placement_basic_block():
    model = timm.create_model('crelu_resnet20')
    block = model.stages[1][1]
    assert isinstance(block.branch.act1, CReLU)
    assert block.branch.conv1.out_channels == 32 and block.branch.conv2.in_channels == 64
    assert block.branch.conv2.out_channels == 32  # same number of filters
    assert isinstance(block.act, nn.ReLU)  # after the addition: the identity path stays ReLU
    assert isinstance(model.stem.act, nn.ReLU)


def test_crelu_placement_bottleneck_after_first_two_convs_only():
    model = timm.create_model('crelu_resnet50')
    branch = model.stages[0][1].branch
    assert [branch.conv1.in_channels, branch.conv2.in_channels, branch.conv3.in_channels] == [256, 128, 128]
    assert branch.conv3.out_channels == 256
    assert not hasattr(branch, 'act3')


def test_crelu_module_concatenates_positive_and_negative_parts():
    x = torch.randn(2, 3, 4, 4)
    y = CReLU()(x)
    assert torch.equal(y, torch.cat((x.clamp_min(0), (-x).clamp_min(0)), 1))


def test_normprop_structure_bn_only_on_reduced_identity_path():
    model = timm.create_model('normprop_resnet20')
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert convs and all(isinstance(m, NormPropConv2d) for m in convs)
    bns = [n for n, m in model.named_modules() if isinstance(m, nn.BatchNorm2d)]
    assert bns == ['stages.1.0.downsample.norm', 'stages.2.0.downsample.norm']
    assert all(m.version == 2 for m in convs)
    assert all(m.version == 3 for m in timm.create_model('normprop_resnet18').modules()
               if isinstance(m, NormPropConv2d))
    bottleneck = timm.create_model('normprop_resnet50')
    # Stage 1 of a bottleneck net changes channels at stride 1: a projection but no BatchNorm.
    assert isinstance(bottleneck.stages[0][0].downsample.norm, nn.Identity)
    assert isinstance(bottleneck.stages[1][0].downsample.norm, nn.BatchNorm2d)


def test_normprop_conv_normalizes_each_filter():
    conv = NormPropConv2d(3, 5, 3, version=2)
    with torch.no_grad():
        conv.gamma.uniform_(0.5, 2.0)
    w = conv.effective_weight()
    assert torch.allclose(w.flatten(1).norm(dim=1), conv.gamma, atol=1e-6)
    x = torch.randn(2, 3, 8, 8)
    ref = nn.functional.conv2d(x, conv.weight / conv.weight.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
                               * conv.gamma.view(-1, 1, 1, 1), conv.bias, padding=1)
    assert torch.allclose(conv(x), ref, atol=1e-6)


def test_normprop_versions():
    v1, v2, v3 = (NormPropConv2d(4, 4, 3, version=v) for v in (1, 2, 3))
    assert isinstance(v1.gamma, nn.Parameter) and isinstance(v2.gamma, nn.Parameter)
    assert 'gamma' not in dict(v3.named_parameters()) and 'gamma' in dict(v3.named_buffers())
    assert torch.allclose(v3.gamma, torch.full((4,), 1 / 1.21))
    # NormProp1 and NormProp2 networks have the same parameters; only NormProp1's activations carry constants.
    m1 = timm.create_model('normprop_resnet20', normprop_version=1)
    m2 = timm.create_model('normprop_resnet20')
    assert [p.shape for p in m1.parameters()] == [p.shape for p in m2.parameters()]
    assert isinstance(m1.stages[0][0].branch.act1, ScaledAct) and isinstance(m2.stages[0][0].branch.act1, nn.ReLU)
    # Named rows fully determine the architecture.
    assert isinstance(timm.create_model('normprop_resnet56_v1').stages[0][0].branch.act1, ScaledAct)


def test_normprop_constants_renormalize_relu_of_gaussian():
    x = torch.randn(1_000_000, generator=torch.Generator().manual_seed(0))
    y = timm_nf.layers.create_act('relu', **timm_nf.layers.normprop_act_kwargs(1))(x)
    assert abs(y.mean().item()) < 5e-3 and abs(y.var().item() - 1) < 5e-3


@pytest.mark.parametrize('act', ['relu', 'crelu', 'silu', 'gelu'])
def test_activation_gains_give_unit_second_moment_scale(act):
    # gamma is 1 / std(act(x)) for x ~ N(0, 1) (Brock et al. 2021, DeepMind's table).
    x = torch.randn(1_000_000, 1, generator=torch.Generator().manual_seed(0))
    y = timm_nf.layers.create_act(act, gain=timm_nf.layers.act_gain(act))(x)
    assert abs(y.std().item() - 1) < 5e-3


def test_initialization_follows_papers():
    bn = timm.create_model('crelu_resnet56_relu')
    plain = timm.create_model('crelu_resnet56_relu_plain')
    normprop = timm.create_model('normprop_resnet56')
    w_bn = bn.stages[1][3].branch.conv1.weight
    w_plain = plain.stages[1][3].branch.conv1.weight
    w_normprop = normprop.stages[1][3].branch.conv1.weight
    # He (MSR, fan-out) for BatchNorm models (Shang et al., Experiments; fb.resnet.torch). "Xavier" for the others,
    # read as Torch7's default for the plain networks and as Glorot normal for NormProp (docs/REPRODUCTION.md).
    assert abs(w_bn.std().item() / (2 / (32 * 9)) ** 0.5 - 1) < 0.1
    assert abs(w_plain.std().item() / (1 / (3 * 32 * 9)) ** 0.5 - 1) < 0.1
    assert abs(w_normprop.std().item() / (2 / (32 * 9 + 32 * 9)) ** 0.5 - 1) < 0.1
    nf = timm.create_model('nf_resnet20')
    assert all(b.skip_gain.item() == 0 for stage in nf.stages for b in stage)  # zero-initialized branches


def test_nf_expected_variance_betas():
    model = timm.create_model('nf_resnet20')
    alpha = 0.2
    betas = [b.beta for stage in model.stages for b in stage]
    expected, var = [], 1.0
    for stage in range(3):
        for idx in range(3):
            expected.append(var ** -0.5)
            var = (1.0 if idx == 0 else var) + alpha ** 2
    assert betas == pytest.approx(expected)


def test_no_weight_decay_lists_gains_and_biases():
    nwd = timm.create_model('nf_resnet20').no_weight_decay()
    assert 'stages.0.0.skip_gain' in nwd and 'stages.0.0.branch.conv1.gain' in nwd
    assert 'stages.0.0.branch.conv1.weight' not in nwd
    assert 'stages.0.0.branch.conv1.gamma' in timm.create_model('normprop_resnet20').no_weight_decay()


@pytest.mark.parametrize('name', ['crelu_resnet20', 'nf_resnet18', 'nf_regnet_b0_relu'])
def test_features_only(name):
    model = timm.create_model(name, features_only=True)
    x = small_input(model)
    feats = model(x)
    assert [f.shape[1] for f in feats] == model.feature_info.channels()
    assert [x.shape[-1] // f.shape[-1] for f in feats] == model.feature_info.reduction()
    picked = timm.create_model(name, features_only=True, out_indices=(1, 3))
    assert len(picked(x)) == 2


@pytest.mark.parametrize('name', ['crelu_resnet20', 'normprop_resnet18', 'nf_regnet_b0_crelu'])
def test_forward_intermediates(name):
    model = timm.create_model(name).eval()
    x = small_input(model)
    final, inter = model.forward_intermediates(x)
    assert torch.allclose(final, model.forward_features(x))
    assert [t.shape[1] for t in inter] == [info['num_chs'] for info in model.feature_info]
    only = model.forward_intermediates(x, indices=[1, 2], intermediates_only=True, stop_early=True)
    assert [t.shape for t in only] == [t.shape for t in inter[1:3]]
    kept = model.prune_intermediate_layers(indices=2)
    assert len(model.forward_intermediates(x, indices=kept, intermediates_only=True)) == 2


def test_grad_checkpointing_and_classifier_api():
    model = timm.create_model('nf_resnet20')
    x = torch.randn(2, 3, 32, 32)
    model.eval()
    ref = model(x)
    model.set_grad_checkpointing(True)
    assert torch.allclose(model(x), ref, atol=1e-6)
    model.reset_classifier(3)
    assert model.get_classifier().out_features == 3 and model(x).shape == (2, 3)
    assert model.forward_head(model.forward_features(x), pre_logits=True).shape == (2, model.num_features)
    groups = timm.models.group_parameters(model, model.group_matcher())
    assert len(groups) > 2


def _randomize(model: nn.Module, seed: int = 0) -> None:
    """Random values for every parameter (gains included) and BatchNorm statistic: at timm's init the last conv's
    gain is 0, which switches every residual branch off and would hide broken branch code."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in list(model.named_parameters()) + list(model.named_buffers()):
            if not p.is_floating_point():
                continue
            if name.endswith(('gain', 'running_var', 'weight')) and p.ndim <= 1 or name.endswith('.gain'):
                p.copy_(torch.rand(p.shape, generator=g) + 0.5)  # positive scales
            elif p.ndim >= 2:
                p.copy_(torch.randn(p.shape, generator=g) * p[0].numel() ** -0.5)  # keeps activations finite
            else:
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)


@pytest.mark.parametrize('timm_name,cfg_fn', [
    ('nf_resnet50', lambda: timm_nf.models.nf_resnet_cfg(50, timm_form=True)),
    ('nf_regnet_b1', lambda: timm_nf.models.nf_regnet_cfg('b1', timm_form=True)),
])
def test_timm_equivalence_nf(timm_name, cfg_fn):
    ref = timm.create_model(timm_name).eval()
    _randomize(ref)
    ours = ResidualNet(cfg_fn()).eval()
    ours.load_state_dict(timm_nf.convert_timm_nfnet_state_dict(ref.state_dict()), strict=True)
    assert all(b.skip_gain is None for s in ours.stages for b in s)
    x = torch.randn(2, 3, 96, 96, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected, got = ref(x), ours(x)
    assert expected.abs().max() > 1  # the branches are on: the comparison can fail
    assert (expected - got).abs().max().item() <= 1e-5


def _timm_resnet_key(key: str) -> str:
    """Our BatchNorm ResNet's state-dict names -> timm's `resnet` names (test-local: the post-activation anchor)."""
    key = re.sub(r'^stem\.conv', 'conv1', key)
    key = re.sub(r'^stem\.norm', 'bn1', key)
    key = re.sub(r'^stages\.(\d+)', lambda m: f'layer{int(m.group(1)) + 1}', key)
    key = re.sub(r'\.branch\.conv(\d)', r'.conv\1', key)
    key = re.sub(r'\.branch\.norm(\d)', r'.bn\1', key)
    key = key.replace('.downsample.conv.', '.downsample.0.').replace('.downsample.norm.', '.downsample.1.')
    return key.replace('head.fc.', 'fc.')


@pytest.mark.parametrize('ours_name,timm_name', [('crelu_resnet18', 'resnet18'), ('crelu_resnet50', 'resnet50')])
def test_timm_equivalence_batchnorm_relu_resnet(ours_name, timm_name):
    # The BatchNorm-ReLU baseline of Shang et al. is He et al.'s ResNet (stride on the 3x3, as fb.resnet.torch).
    ref = timm.create_model(timm_name).eval()
    _randomize(ref)
    ours = timm.create_model(ours_name, act_layer='relu').eval()
    ref_sd = ref.state_dict()
    ours.load_state_dict({k: ref_sd[_timm_resnet_key(k)] for k in ours.state_dict()}, strict=True)
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected, got = ref(x), ours(x)
    assert (expected - got).abs().max().item() <= 1e-5 * max(1.0, expected.abs().max().item())


@pytest.mark.parametrize('kwargs,match', [
    (dict(normprop_version=4), r"normprop_version=4 .* choose one of 1, 2, 3"),
    (dict(act_layer='foo'), r"act_layer='foo' .* choose one of 'relu', 'crelu'"),
    (dict(norm='layernorm'), r"norm='layernorm' .* 'batchnorm', 'none', 'normprop'"),
    (dict(depth=57), r'depth=57 is not of the form 6n\+2'),
    (dict(width_mult=0), r'width_mult=0 must be a positive number'),
])
def test_bad_keyword_values_raise_value_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        timm.create_model('crelu_resnet20', **kwargs)


def test_bad_nf_keyword_values():
    with pytest.raises(ValueError, match=r"choose one of 'relu', 'crelu', 'silu', 'gelu'"):
        timm.create_model('nf_resnet20', act_layer='tanhh')
    with pytest.raises(ValueError, match='norm=.batchnorm. does not apply to nf_resnet20'):
        timm.create_model('nf_resnet20', norm='batchnorm')
    with pytest.raises(ValueError, match='depth applies only to CIFAR-layout models'):
        timm.create_model('crelu_resnet18', depth=20)


def test_unknown_model_fails_with_timm_error():
    with pytest.raises(RuntimeError, match='Unknown model'):
        timm.create_model('crelu_resnet21')


def test_cifar_depth_keyword_builds_other_depths():
    model = timm.create_model('crelu_resnet20', depth=14, act_layer='relu')
    assert [len(s) for s in model.stages] == [2, 2, 2]
