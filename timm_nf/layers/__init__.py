"""Building blocks of the normalization-in-ResNets study (activations, NormProp conv, schemes, blocks)."""
from .activations import (
    ACT_GAINS, NORMPROP_C0, NORMPROP_C1, CReLU, ScaledAct, act_gain, channel_mult, check_choice, create_act,
)
from .blocks import (
    BLOCK_KINDS, SHORTCUTS, STEMS, Downsample, NFBlock, PostActBlock, ScaledSigmoid, ZeroPadShortcut, create_attn,
    create_branch, create_stem, stem_feature_index,
)
from .norm_scheme import NF_NORM, NORMS, NormScheme
from .normprop import NORMPROP_GAMMA_INIT, NORMPROP_VERSIONS, NormPropConv2d, normprop_act_kwargs
from .fold import FoldableSequential, fold_conv_bn, to_plain_conv
from .std_conv import ScaledStdConv2d
