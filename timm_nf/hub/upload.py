"""Upload a publication folder to the Hugging Face Hub: one commit with all its files.

The token is whatever huggingface_hub finds (`HF_TOKEN`, or the login of `hf auth login`); this module never
reads it except to make sure an error message does not contain it, and never prints, logs or writes it.
"""
import os
from pathlib import Path
from typing import List, Optional

from .publish import CARD_FILE, CONFIG_FILE, HUB_FILES, WEIGHTS_FILE, PublishError

__all__ = ['UploadError', 'push_folder', 'check_publication_folder']

REQUIRED_FILES = (WEIGHTS_FILE, CONFIG_FILE, CARD_FILE)


class UploadError(PublishError):
    """The upload failed (no network, offline mode, bad token, no permission); the folder is untouched."""


def check_publication_folder(folder: str) -> List[str]:
    """File names of a complete publication folder (the files `write_publication` writes).

    Raises:
        PublishError: The folder is missing, incomplete or holds other files.
    """
    path = Path(folder)
    if not path.is_dir():
        raise PublishError(f'{folder!r} is not a publication folder (missing); run hub/publish.py with --checkpoint')
    names = sorted(os.listdir(path))
    missing = [n for n in REQUIRED_FILES if n not in names]
    if missing:
        raise PublishError(f'{folder!r} is not a complete publication (no {", ".join(missing)}); '
                           f'run hub/publish.py with --checkpoint to write it')
    foreign = [n for n in names if n not in HUB_FILES]
    if foreign:
        raise PublishError(f'{folder!r} holds files publish did not write ({", ".join(foreign[:4])}); remove them '
                           f'or publish to a new folder')
    return names


def _redact(text: str, secret: Optional[str]) -> str:
    return text.replace(secret, '***') if secret else text


def _one_line(error: BaseException, secret: Optional[str]) -> str:
    text = str(error).strip() or type(error).__name__
    text = ' '.join(text.split())  # huggingface_hub messages span lines
    if len(text) > 200:
        text = text[:197] + '...'
    return _redact(f'{type(error).__name__}: {text}', secret)


def push_folder(
        folder: str,
        repo_id: str,
        private: bool = False,
        revision: str = '',
        commit_message: str = '',
) -> str:
    """Create `repo_id` if needed and upload the publication `folder` as one commit.

    Args:
        folder: Publication folder (`write_publication` output), uploaded as it is.
        repo_id: `OWNER/NAME`.
        private: Create the repo private (an existing repo keeps its visibility).
        revision: Branch to commit to (created from main if missing; default main).
        commit_message: Commit message (default: "Add <files>").

    Returns:
        URL of the commit.

    Raises:
        UploadError: Any failure of the Hub calls, as one line without the token; `folder` is left unchanged.
    """
    names = check_publication_folder(folder)
    # Imported here: huggingface_hub reads HF_HUB_OFFLINE / HF_ENDPOINT at import, callers may set them first.
    import huggingface_hub
    from huggingface_hub import CommitOperationAdd, HfApi

    import timm

    secret = None
    try:
        secret = huggingface_hub.get_token()  # only to redact it from error messages
    except Exception:
        pass
    api = HfApi(library_name='timm', library_version=timm.__version__)
    step = 'create the repo'
    try:
        repo_id = api.create_repo(repo_id, private=private, exist_ok=True).repo_id
        if revision and revision != 'main':
            step = f'create branch {revision!r}'
            api.create_branch(repo_id, branch=revision, exist_ok=True)
        step = 'commit the files'
        operations = [CommitOperationAdd(path_in_repo=n, path_or_fileobj=os.path.join(folder, n)) for n in names]
        info = api.create_commit(
            repo_id, operations=operations, commit_message=commit_message or f'Add {", ".join(names)}',
            revision=revision or None)
    except Exception as e:  # network, HTTP, auth and offline-mode errors come from several libraries
        retry = f'python hub/publish.py --out {folder} --repo-id {repo_id} --push'
        if revision:
            retry += f' --revision {revision}'
        raise UploadError(f'upload to {repo_id} failed to {step} ({_one_line(e, secret)}); {folder} is intact, '
                          f'retry with `{retry}`') from None
    return str(info.commit_url)
