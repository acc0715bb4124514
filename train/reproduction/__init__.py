"""Repository tooling of the reproduction study (`train/study.py`) and its design probes (`train/probe.py`).

Not part of the installed `timm_nf` package: these modules read and write the checkout's `docs/` records, whose
location they take from their own path.
"""
