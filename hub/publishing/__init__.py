"""Publishing trained weights to the Hugging Face Hub in the form timm loads (safetensors, config.json, card).

Repository tooling, not part of the installed `timm_nf` package: it reads and writes the checkout's committed
folders (`hub/published/`, `hub/results/`, `MODEL_CARDS.md`), whose root it takes from its own location
(`REPO_ROOT`). `hub/publish.py` is the command line over this package: `prepare_publication` checks every input
and builds the publication in memory (`prepare_republication` rebuilds it from an existing folder),
`write_publication` writes the repo folder in one step, `push_folder` uploads it as one commit, `hub_status` asks
the Hub which repos exist, and `verify_round_trip` loads a folder back offline through the Hub cache layout.
"""
from .cache import install_in_hf_cache, verify_round_trip
from .results import MAX_WEIGHTS_IN_GIT, REPO_ROOT, SeedSpread, entry_results, load_results_row, study_seeds
from .card import paper_rows, render_card
from .folder import (
    CARD_FILE, CONFIG_FILE, HPARAMS_FILE, HUB_FILES, WEIGHTS_FILE, Publication, PublishError,
    architecture_differences, prepare_publication, prepare_republication, write_publication,
)
from .upload import (
    FolderPlan, UploadError, check_publication_folder, hub_status, plan_publications, push_folder,
    push_publications,
)

__all__ = [
    'Publication', 'PublishError', 'UploadError', 'prepare_publication', 'write_publication', 'push_folder',
    'check_publication_folder', 'plan_publications', 'push_publications', 'FolderPlan', 'install_in_hf_cache',
    'verify_round_trip', 'render_card', 'paper_rows',
    'architecture_differences', 'MAX_WEIGHTS_IN_GIT', 'REPO_ROOT', 'entry_results', 'load_results_row',
    'HUB_FILES', 'WEIGHTS_FILE', 'CONFIG_FILE', 'CARD_FILE', 'HPARAMS_FILE', 'prepare_republication', 'hub_status',
    'study_seeds', 'SeedSpread',
]
