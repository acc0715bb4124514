"""pytest conftest used next to a copy of timm's own ``tests/test_models.py``.

timm's test module builds its parametrize lists (``list_models(...)``) at import time, so our
model families must already be in timm's registry when pytest collects it. pytest loads this
conftest before collecting any test module in the same directory, so importing ``timm_nf``
here is early enough.

The import is deliberately unconditional: if ``timm_nf`` cannot be imported, the contract run
must fail loudly instead of silently testing only timm's own models.

Used by ``run_timm_model_tests.sh``, which copies this file into a temporary directory.
"""
import timm_nf  # noqa: F401  (imported for its side effect: registering models with timm)
