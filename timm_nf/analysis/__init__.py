"""Signal propagation plots and residual diagnostics for any timm model (``python -m timm_nf.analysis``).

Measurements of the two papers behind this project, on any model with residual blocks:

* signal propagation plots (Brock, De & Smith, ICLR 2021): `signal_propagation`;
* residual differences Delta (Shang, Chiu & Sohn, AAAI 2017, Fig. 2): `residual_differences`;
* mean activation and non-zero ratio entering the classifier (Shang et al., Table 1): `classifier_activations`;
* filter coherence of each conv (Shang et al., Fig. 3): `filter_coherence`.

Typical use::

    model = create_analysis_model('nf_resnet56')
    set_unit_gains(model)
    trace = trace_model(model, torch.randn(8, 3, 32, 32))
    rows = signal_propagation(trace)

Block classes are read through the adapters of `timm_nf.analysis.adapters` (one registry). See docs/ANALYSIS.md.
"""
from .adapters import (
    TRANSFORMS, BlockAdapter, NoResidualBlocksError, ResidualBlock, effective_conv_weight, find_residual_blocks,
    get_block_adapter, register_block_adapter, set_unit_gains, unscale_nf,
)
from .inputs import (
    AnalysisError, create_analysis_model, dataset_batches, model_input_size, noise_batches, parse_model_spec,
)
from .measure import (
    ForwardError, ModelTrace, analysis_mode, classifier_activations, filter_coherence, residual_differences,
    signal_propagation, trace_model,
)
from .runner import ANALYSES, run_analysis, save_analysis
