#!/usr/bin/env python3
"""Regenerate MODEL_CARDS.md from timm's registry, the published tags and the study's results.

    python hub/model_cards.py            # rewrite MODEL_CARDS.md
    python hub/model_cards.py --check    # exit 1 if it is out of date
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # repository tooling: hub.publishing, train.reproduction

from hub.publishing.model_cards import main  # noqa: E402

if __name__ == '__main__':
    raise SystemExit(main())
