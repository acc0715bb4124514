"""Tests of `timm_nf.analysis`: the papers' signal propagation findings, the two pitfalls, and the CLI.

Findings (N(0, 1) input at initialization, 2 CPU cores, each test seconds):

* Brock, De & Smith (ICLR 2021), Sec. 4 / Fig. 1-2: an NF-ResNet's average channel variance follows the variance it
  tracks (1 + k alpha^2 within a stage, reset after each transition) with the mean near 0; the same network with
  plain He-initialized convs and no alpha/beta scaling explodes exponentially; a BatchNorm pre-activation ResNet
  shows the sawtooth (linear growth within a stage, reset at transitions).
* Shang, Chiu & Sohn (AAAI 2017), Fig. 2: the residual difference Delta of a plain ReLU ResNet-110 grows by orders
  of magnitude with depth, that of the BatchNorm ResNet-110 stays within a small band.

Tolerances were measured over seeds 0-4 (the tests run seed 0); the measured ranges are in the comments.
"""
import csv
import math
import os

import pytest
import torch
import torch.nn as nn
import timm

import timm_nf  # noqa: F401  (registers the project's models)
from timm_nf.analysis import (
    AnalysisError, NoResidualBlocksError, analysis_mode, classifier_activations, create_analysis_model,
    filter_coherence, find_residual_blocks, parse_model_spec, residual_differences, set_unit_gains,
    signal_propagation, trace_model,
)
from timm_nf.analysis.__main__ import main

ALPHA = 0.2


def _noise(shape, seed=0):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def _spp(spec, shape, unit_gains=True, seed=0, **kwargs):
    model = create_analysis_model(spec, seed=seed)
    if unit_gains:
        set_unit_gains(model)
    return signal_propagation(trace_model(model, _noise(shape, seed), **kwargs))


def _by_stage(rows):
    stages = {}
    for r in rows[1:]:
        stages.setdefault(r['stage'], []).append(r)
    return list(stages.values())


# --- Brock et al.: signal propagation plots --------------------------------------------------------------------------

def test_nf_resnet_variance_follows_expected_variance():
    rows = _spp('nf_resnet56', (8, 3, 32, 32))
    blocks = rows[1:]
    assert len(blocks) == 27 and all(math.isfinite(r['expected_var']) for r in blocks)
    # Relative error of avg_var against the tracked expected variance: measured -22.5% .. -0.3% (seeds 0-4; always
    # a little low: zero padding of the 3x3 convs at 8x8 and 16x16 resolution loses variance at the borders).
    for r in blocks:
        assert abs(r['avg_var'] / r['expected_var'] - 1) < 0.25, r
    for stage in _by_stage(rows):
        # Within a stage the variance grows linearly by alpha^2 per block: measured slopes 0.030 .. 0.042.
        slope = (stage[-1]['avg_var'] - stage[0]['avg_var']) / (len(stage) - 1)
        assert 0.5 * ALPHA ** 2 < slope < 1.5 * ALPHA ** 2, slope
        # After a transition it is back to about 1 + alpha^2 (measured 0.84 .. 1.02).
        assert 0.75 < stage[0]['avg_var'] < 1.25, stage[0]
    # The mean stays near zero (measured max average squared channel mean 0.0057 .. 0.0115).
    assert max(r['avg_sq_mean'] for r in rows) < 0.05
    # The branch keeps unit variance at the first stage's resolution (measured 0.83 .. 1.05).
    assert all(0.75 < r['res_avg_var'] < 1.25 for r in _by_stage(rows)[0])


def test_unscaled_nf_resnet_explodes():
    rows = _spp('nf_resnet56+unscaled', (8, 3, 32, 32))
    var = [r['avg_var'] for r in rows[1:]]
    # He init, no WS and no alpha/beta: the variance roughly doubles per block (measured geometric mean growth
    # 1.59 .. 1.82 per block over 27 blocks, 96-100% of blocks increasing).
    growth = math.exp((math.log(var[-1]) - math.log(var[0])) / (len(var) - 1))
    assert growth > 1.4, growth
    assert sum(b > a for a, b in zip(var, var[1:])) >= 0.9 * (len(var) - 1)
    # And the mean shifts grow with it (measured last average squared channel mean 4.9e5 .. 2.3e7).
    assert rows[-1]['avg_sq_mean'] > 1e4
    # Nothing is tracked any more.
    assert all(math.isnan(r['expected_var']) for r in rows)


def test_batchnorm_preact_resnet_sawtooth():
    rows = _spp('resnetv2_50', (4, 3, 64, 64))
    stages = _by_stage(rows)
    assert [len(s) for s in stages] == [3, 4, 6, 3]
    for stage in stages:
        var = [r['avg_var'] for r in stage]
        steps = [b - a for a, b in zip(var, var[1:])]
        # Linear growth: every step positive and within 30% of the stage's mean step (measured within 4.4%):
        # each BN-ReLU-conv branch adds about the same variance (res_avg_var measured 0.164 .. 0.177).
        mean_step = sum(steps) / len(steps)
        assert mean_step > 0 and all(abs(s / mean_step - 1) < 0.3 for s in steps), steps
    for prev, nxt in zip(stages, stages[1:]):
        # Reset at each transition: below the previous stage's end (measured ratio 0.34 .. 0.73) and back near the
        # previous stage's start (measured ratio 0.91 .. 1.42).
        assert nxt[0]['avg_var'] < 0.8 * prev[-1]['avg_var']
        assert nxt[0]['avg_var'] < 1.6 * prev[0]['avg_var']


def test_batchnorm_eval_mode_pitfall():
    """At init, eval-mode BN uses running stats (0, 1), normalizes nothing, and the SPP explodes; the analysis uses
    batch statistics without touching the running statistics."""
    model = create_analysis_model('resnetv2_50')
    x = _noise((4, 3, 64, 64))
    batch = signal_propagation(trace_model(model, x))
    running = signal_propagation(trace_model(model, x, batch_stats=False))
    # Measured: last avg_var 0.78 .. 0.80 with batch stats; with running stats 17 .. 77, i.e. 500 .. 2300x the
    # stem's variance and 22 .. 98x the batch-statistics value.
    assert batch[-1]['avg_var'] < 2
    assert running[-1]['avg_var'] > 10 * batch[-1]['avg_var']
    assert running[-1]['avg_var'] > 100 * running[0]['avg_var']
    bn = model.stages[0].blocks[0].norm1
    assert torch.all(bn.running_mean == 0) and torch.all(bn.running_var == 1) and int(bn.num_batches_tracked) == 0
    model.train()
    with analysis_mode(model):
        assert bn.training and not bn.track_running_stats
        assert not model.stages[0].blocks[0].drop_path.training
    assert model.training and bn.training and bn.track_running_stats


@pytest.mark.parametrize('spec,zeroed', [
    ('resnet50', 'layer1.0.bn3.weight'),         # timm zero-inits the last BN weight of each block
    ('nf_resnet50', 'stages.0.0.conv3.gain'),    # timm NF: last conv's Scaled WS gain
    ('nf_resnet20', 'stages.0.0.skip_gain'),     # ours: DeepMind's scalar skip gain
])
def test_unit_gains(spec, zeroed):
    model = create_analysis_model(spec)
    x = _noise((2, 3, 32, 32))
    before = signal_propagation(trace_model(model, x))
    reset = set_unit_gains(model)
    assert zeroed in reset and len(reset) == len(find_residual_blocks(model))
    after = signal_propagation(trace_model(model, x))
    # With a zero-initialized branch every block is the identity (post-act: a ReLU of the input) and the SPP is flat.
    assert before[-1]['avg_var'] == pytest.approx(before[-2]['avg_var'], rel=1e-6)
    assert after[-1]['avg_var'] != pytest.approx(after[-2]['avg_var'], rel=1e-3)
    assert set_unit_gains(model) == []  # only all-zero gains are touched: safe on trained weights


# --- Shang et al.: residual differences, activations, coherence ------------------------------------------------------

def _delta(spec, seed=0):
    model = create_analysis_model(spec, seed=seed)
    return [r['delta'] for r in residual_differences(trace_model(model, _noise((4, 3, 32, 32), seed)))]


def test_delta_plain_relu_resnet110_explodes_under_xavier_batchnorm_does_not():
    plain = _delta('crelu_resnet110:act_layer=relu,norm=none,weight_init=xavier_normal')
    bn = _delta('crelu_resnet110:act_layer=relu')
    assert len(plain) == len(bn) == 54
    # Plain (Xavier normal init, no normalization): Delta grows by orders of magnitude (measured last/first
    # 770 .. 2900, last 9 blocks / first 9 blocks 320 .. 690).
    assert plain[-1] / plain[0] > 100
    assert sum(plain[-9:]) / sum(plain[:9]) > 100
    # BatchNorm: Delta stays within a band (measured 2.93 .. 7.26, max/min 2.41 .. 2.48: it grows with the width,
    # as ||x||_2 over channels does).
    assert max(bn) / min(bn) < 4
    assert 1 < min(bn) and max(bn) < 10


@pytest.mark.parametrize('act', ['relu', 'crelu'])
def test_default_plain_init_keeps_resnet110_activations_flat(act):
    """Pins the default `weight_init` of the plain networks (docs/REPRODUCTION.md, design choice 1) to what
    justified it: under Torch7's default init a plain ResNet-110 passes its input on at about the same scale,
    where Xavier makes it grow by five orders of magnitude or more (and the network unable to train)."""
    def growth(spec):
        trace = trace_model(create_analysis_model(spec, seed=0), _noise((4, 3, 32, 32), 0))
        second_moment = [r['avg_var'] + r['avg_sq_mean'] for r in signal_propagation(trace)]
        deltas = [r['delta'] for r in residual_differences(trace) if r['delta'] == r['delta']]
        return second_moment[-1] / second_moment[0], sum(deltas[-9:]) / sum(deltas[:9])

    # seeds 0-4: second moment last/stem 0.68 .. 6.8, Delta last 9 / first 9 blocks 1.9 .. 3.6
    moment, delta = growth(f'crelu_resnet110:act_layer={act},norm=none')
    assert moment < 20 and delta < 10
    # Xavier normal, seeds 0-4: 4.2e5 .. 1.2e8 and 320 .. 4000
    moment, delta = growth(f'crelu_resnet110:act_layer={act},norm=none,weight_init=xavier_normal')
    assert moment > 1e4 and delta > 100


def test_classifier_activations():
    model = create_analysis_model('crelu_resnet20:act_layer=relu')
    rows = {r['tensor']: r for r in classifier_activations(trace_model(model, _noise((4, 3, 32, 32))))}
    feats = rows['features']
    assert feats['numel'] == 4 * 64 * 8 * 8
    assert 0 < feats['nzr'] < 1 and feats['mean'] > 0  # ReLU features: some zeros, positive mean
    assert rows['pre_logits']['mean'] == pytest.approx(feats['mean'], rel=1e-6)  # average pooling keeps the mean


def test_filter_coherence_definition():
    conv = nn.Conv2d(2, 3, 1, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([[1., 0.], [0., 2.], [-3., 0.]]).view(3, 2, 1, 1))
    rows = filter_coherence(nn.Sequential(conv))
    assert rows[0]['coherence'] == pytest.approx(1.0)  # filters 0 and 2 are anti-parallel
    with torch.no_grad():
        conv.weight[2] = 0.0  # zero filters (zero-init) are left out
    assert filter_coherence(nn.Sequential(conv))[0]['coherence'] == pytest.approx(0.0)
    # Weight standardization removes each filter's mean before comparing directions.
    ws = timm.layers.ScaledStdConv2d(2, 2, 1)
    with torch.no_grad():
        ws.weight.copy_(torch.tensor([[5., 3.], [3., 5.]]).view(2, 2, 1, 1))
    assert filter_coherence(nn.Sequential(ws))[0]['coherence'] == pytest.approx(1.0)


def test_find_blocks_and_specs():
    names = [b.name for b in find_residual_blocks(timm.create_model('nf_resnet26'))]
    assert names[:2] == ['stages.0.0', 'stages.0.1'] and len(names) == 8
    spec = parse_model_spec('crelu_resnet110:act_layer=relu,norm=none,width_mult=0.75+unscaled')
    assert spec.kwargs == dict(act_layer='relu', norm='none', width_mult=0.75) and spec.transforms == ('unscaled',)
    with pytest.raises(NoResidualBlocksError):
        find_residual_blocks(nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU()))
    with pytest.raises(AnalysisError, match='unknown model transform'):
        parse_model_spec('nf_resnet20+nope')


# --- CLI --------------------------------------------------------------------------------------------------------------

def _read(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_cli_spp_timm_models(tmp_path):
    out = str(tmp_path)
    assert main(['spp', '--model', 'resnetv2_50', '--compare', 'nf_resnet50', 'resnet50', '--img-size', '32',
                 '--batch-size', '2', '--unit-gains', '--no-progress', '--out', out]) == 0
    rows = _read(os.path.join(out, 'spp.csv'))
    assert list(rows[0])[:8] == ['model', 'index', 'stage', 'avg_sq_mean', 'avg_var', 'res_avg_var', 'input',
                                 'unit_gains']
    assert {r['model'] for r in rows} == {'resnetv2_50', 'nf_resnet50', 'resnet50'}
    assert len(rows) == 3 * 17 and all(r['input'] == 'noise' and r['unit_gains'] == 'true' for r in rows)
    assert all(r['res_avg_var'] == '' for r in rows if r['index'] == '0')
    assert os.path.getsize(os.path.join(out, 'spp.png')) > 10_000
    assert 'python -m timm_nf.analysis spp --model resnetv2_50' in open(os.path.join(out, 'commands.txt')).read()


@pytest.mark.parametrize('kind', ['delta', 'activations', 'coherence'])
def test_cli_other_analyses_on_digits(tmp_path, kind):
    out = str(tmp_path)
    assert main([kind, '--model', 'nf_resnet20', '--compare', 'crelu_resnet20', '--dataset', 'digits',
                 '--batch-size', '4', '--no-progress', '--out', out]) == 0
    rows = _read(os.path.join(out, f'{kind}.csv'))
    assert {r['model'] for r in rows} == {'nf_resnet20', 'crelu_resnet20'}
    if kind != 'coherence':
        assert all(r['input'] == 'digits' for r in rows)
    assert os.path.exists(os.path.join(out, f'{kind}.png'))


@pytest.mark.parametrize('args,message', [
    (['--model', 'resnet_does_not_exist'], 'unknown model'),
    (['--model', 'vgg11', '--img-size', '32'], 'no residual blocks'),
    (['--model', 'test_vit', '--img-size', '64'], 'only accepts 160x160'),
    (['--model', 'resnet50', '--img-size', '8', '--batch-size', '1'], 'rejected an input of shape (1, 3, 8, 8)'),
    (['--model', 'nf_resnet20', '--dataset', 'nope'], 'unknown dataset'),
])
def test_cli_errors(tmp_path, capsys, args, message):
    assert main(['spp'] + args + ['--no-progress', '--out', str(tmp_path)]) == 2
    assert message in capsys.readouterr().err
