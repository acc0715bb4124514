"""timm_nf.profile: the shape-based MAC count equals torch's FLOP counter, on one model of each family and timm's."""
import pytest
import timm
import torch
from torch.utils.flop_counter import FlopCounterMode

from timm_nf.profile import model_activations, model_stats


@pytest.mark.parametrize('name, kwargs', [
    ('crelu_resnet20', {}), ('normprop_resnet20', {}), ('nf_resnet26', {}), ('nf_regnet_b0_crelu', {}),
    ('crelu_resnet20', {'width_mult': 1.5, 'shortcut': 'conv'}), ('resnet50', {}),
])
def test_macs_equal_torch_flop_counter(name, kwargs):
    model = timm.create_model(name, device='meta', **kwargs)
    size = model.pretrained_cfg['input_size'][-1]
    with FlopCounterMode(display=False) as counter:
        model(torch.empty(1, 3, size, size, device='meta'))
    stats = model_stats(name, **kwargs)
    assert round(stats.gmacs * 1e9) == counter.get_total_flops() // 2
    assert stats.params == sum(p.numel() for p in timm.create_model(name, device='meta', **kwargs).parameters())
    assert stats.img_size == size and stats.out_shape[0] == 1


def test_resnet50_matches_timm_published_gmacs_and_activations():
    stats = model_stats('resnet50')
    assert round(stats.gmacs, 1) == 4.1  # timm's model card for resnet50.a1_in1k: GMACs 4.1, activations 11.1 M
    assert round(model_activations('resnet50') / 1e6, 1) == 11.1
    small = model_stats('resnet50', img_size=112)
    assert small.img_size == 112 and 0.2 < small.gmacs / stats.gmacs < 0.3
