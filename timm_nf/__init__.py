"""timm-nf: the models of the normalization-in-ResNets literature, registered in timm.

``import timm_nf`` registers the `crelu_resnet*`, `normprop_resnet*`, `nf_resnet*` and `nf_regnet*_relu/_crelu`
families with timm, so ``timm.create_model(name)`` builds them.
"""
from . import models
from .fold import fold_for_inference
from .models import ResidualNet, ResNetCfg, convert_timm_nfnet_state_dict

__version__ = '0.2.0'  # the one source of the version (pyproject.toml reads it)
