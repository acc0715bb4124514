"""MODEL_CARDS.md is generated from the registry and must be current."""
from pathlib import Path

from hub.publishing.model_cards import render
from timm_nf.paper import TABLE2, TABLE4

import timm


def test_model_cards_file_is_current():
    path = Path(__file__).resolve().parents[1] / 'MODEL_CARDS.md'
    assert path.read_text() == render(), 'MODEL_CARDS.md is stale: run `python hub/model_cards.py`'


def test_every_paper_row_builds_the_named_architecture():
    for row in TABLE2 + TABLE4:
        assert timm.is_model(row.model), row
    # Table 2 rows are named models: their names alone (no kwargs) fully determine the architecture.
    assert all(not row.kwargs for row in TABLE2)
