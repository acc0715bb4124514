"""Model families; importing this package registers every model with timm."""
from . import crelu_resnet, nf_regnet, nf_resnet, normprop_resnet
from ._residual_net import ResidualNet, ResNetCfg, cifar_depths, convert_timm_nfnet_state_dict
from .nf_regnet import nf_regnet_cfg
from .nf_resnet import nf_resnet_cfg, to_timm_form
