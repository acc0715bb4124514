"""Inference helpers for convs whose weight is a function of raw parameters (scaled WS, NormProp).

Both recompute their effective weight on every forward pass, also at inference, where the parameters never
change. `EffectiveWeightConv` gives such a conv two ways out:

* an eval-mode cache: under `torch.no_grad()` / `torch.inference_mode()` in eval mode the effective weight is
  computed once and reused until a parameter changes (tracked by the tensors' version counters, which every
  in-place update such as an optimizer step or `load_state_dict` bumps) or the module returns to train mode.
  It is bypassed whenever autograd records (a cached tensor from one graph would break a second backward) and
  under TorchScript, FX tracing, `torch.compile` and `torch.export`, which must see the computation itself.
* `fuse()`: a plain `nn.Conv2d` holding the effective weight, for `timm.utils.reparameterize_model`.

Constant scalars around a conv can live in its weight instead of costing a pass over the activations, in
training and inference alike: `input_scale` (e.g. an NF activation gain gamma and beta that multiply the conv's
input: ``conv(W, s x) = conv(s W, x)``, zero padding included) and `output_scale` (e.g. alpha, on weight and bias).
A learnable scalar on the output (an NF skip gain, owned by the block: `output_gain`) is *deferred* into the cached
weight and bias only while the cache is active; the block then skips its multiply. Block and conv decide with the
same predicate, `cache_active`, which assumes the whole model is in one mode (`model.eval()`), as timm's tooling
leaves it. Forward hooks on a branch then see the skip gain applied: wrap such measurements in
`weight_cache_enabled(False)`, as `timm_nf.analysis` does.
"""
from contextlib import contextmanager
from typing import Iterator, List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ['EffectiveWeightConv', 'plain_conv_like', 'CACHE_ENABLED', 'cache_active', 'weight_cache_enabled']

# torch has no public "is fx.symbolic_trace running" check. Newer torch has `is_fx_symbolic_tracing` (added
# Aug 2025, pytorch PR 161385; its `is_fx_tracing` also answers True under torch.export and logs a warning on
# every call); in older torch `is_fx_tracing` is that check (the suite passes with it on torch 2.5.1).
_is_fx_symbolic_tracing = getattr(torch.fx._symbolic_trace, 'is_fx_symbolic_tracing', None) \
    or torch.fx._symbolic_trace.is_fx_tracing

# Global switch, for benchmarks that measure the uncached cost (`train/benchmark.py --compare NAME@nocache`).
CACHE_ENABLED = True


def plain_conv_like(conv: nn.Conv2d, weight: torch.Tensor, bias: Optional[torch.Tensor]) -> nn.Conv2d:
    """An `nn.Conv2d` with `conv`'s geometry and the given weight and bias (copied, detached)."""
    fused = nn.Conv2d(
        conv.in_channels, conv.out_channels, conv.kernel_size, stride=conv.stride, padding=conv.padding,
        dilation=conv.dilation, groups=conv.groups, bias=bias is not None, padding_mode=conv.padding_mode,
        device=weight.device, dtype=weight.dtype)
    with torch.no_grad():
        fused.weight.copy_(weight)
        if bias is not None:
            fused.bias.copy_(bias)
    fused.train(conv.training)
    return fused


@contextmanager
def weight_cache_enabled(enabled: bool) -> Iterator[None]:
    """Switch the eval cache (and the deferred scalars) on or off within a block, e.g. for measurements that hook
    into intermediate outputs and need every module to compute literally what it says."""
    global CACHE_ENABLED
    previous = CACHE_ENABLED
    CACHE_ENABLED = enabled
    try:
        yield
    finally:
        CACHE_ENABLED = previous


@torch.jit.unused
def cache_active(training: bool) -> bool:
    """True when cached weights (and deferred input scales) are in use: eval mode, autograd off, no tracing.

    Takes the module's `training` flag rather than the module so that TorchScript can compile the (unused) call.
    """
    if not CACHE_ENABLED or training or torch.is_grad_enabled():
        return False
    return not (_is_fx_symbolic_tracing() or torch.compiler.is_compiling())


class EffectiveWeightConv(nn.Conv2d):
    """Base for convs that apply `effective_weight()` instead of `weight`; subclasses define that function."""

    def effective_weight(self) -> torch.Tensor:
        raise NotImplementedError

    def _cache_init(self) -> None:
        # Plain Python attributes: never in the state dict, never moved by `.to()` (the key notices a move).
        self._cached_weight: Optional[torch.Tensor] = None
        self._cache_key: List[int] = []
        # Scalars carried by the weight (see the module docstring). The learnable output gain is owned by another
        # module; a plain list keeps it from being registered here a second time.
        self.input_scale = 1.0
        self.output_scale = 1.0
        self.output_gain: List[torch.Tensor] = []
        self._cached_bias: Optional[torch.Tensor] = None

    @torch.jit.unused
    def _can_cache(self) -> bool:
        return cache_active(self.training)

    @torch.jit.unused
    def _key(self) -> List[int]:
        key: List[int] = [int(torch.is_inference_mode_enabled()), hash(self.input_scale), hash(self.output_scale)]
        for t in (*self._parameters.values(), *self._buffers.values(), *self.output_gain):
            if t is not None:
                key += [id(t), t._version, t.data_ptr()]
        return key

    def scaled_weight_and_bias(self) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """Effective weight and bias with the constant scalars (a multiply over the weights, not the activations)."""
        weight, bias = self.effective_weight(), self.bias
        scale = self.input_scale * self.output_scale
        if scale != 1.0:
            weight = weight * scale
        if bias is not None and self.output_scale != 1.0:
            bias = bias * self.output_scale
        return weight, bias

    @torch.jit.unused
    def cached_weight_and_bias(self) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """Scaled weight and bias with the deferred gains, recomputed only when a tensor they depend on changed."""
        key = self._key()
        if self._cached_weight is None or key != self._cache_key:
            weight, bias = self.scaled_weight_and_bias()
            for gain in self.output_gain:
                weight = weight * float(gain)
                bias = bias * float(gain) if bias is not None else None
            # detach(): plain tensors (a Parameter assigned to a module attribute would be registered as one)
            self._cached_weight = weight.detach()
            self._cached_bias = bias.detach() if bias is not None else None
            self._cache_key = key
        return self._cached_weight, self._cached_bias

    def train(self, mode: bool = True):
        self._cached_weight = None  # a model back in training must never see a stale weight
        return super().train(mode)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.jit.is_scripting() and self._can_cache():
            weight, bias = self.cached_weight_and_bias()
        else:
            weight, bias = self.scaled_weight_and_bias()
        return F.conv2d(x, weight, bias, self.stride, self.padding, self.dilation, self.groups)

    @torch.no_grad()
    def fuse(self) -> nn.Conv2d:
        """A plain conv computing the same function (for `timm.utils.reparameterize_model`)."""
        return plain_conv_like(self, *self.scaled_weight_and_bias())
