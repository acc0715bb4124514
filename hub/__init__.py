"""Repository tooling of publishing: `hub/publish.py`, `hub/model_cards.py` and the `hub.publishing` library."""
