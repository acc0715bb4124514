"""Upload a publication folder to the Hugging Face Hub: one commit with all its files.

The token is whatever huggingface_hub finds (`HF_TOKEN`, or the login of `hf auth login`); this module never
reads it except to make sure an error message does not contain it, and never prints, logs or writes it.
"""
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from .folder import CARD_FILE, CONFIG_FILE, HUB_FILES, WEIGHTS_FILE, PublishError

__all__ = ['UploadError', 'push_folder', 'check_publication_folder', 'FolderPlan', 'plan_publications',
           'push_publications', 'hub_status']

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


def _hub_api_and_secret() -> Tuple[object, Optional[str]]:
    # Imported here: huggingface_hub reads HF_HUB_OFFLINE / HF_ENDPOINT at import, callers may set them first.
    import huggingface_hub
    from huggingface_hub import HfApi

    import timm

    secret = None
    try:
        secret = huggingface_hub.get_token()  # only to redact it from error messages (and to know there is one)
    except Exception:
        pass
    return HfApi(library_name='timm', library_version=timm.__version__), secret


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
    from huggingface_hub import CommitOperationAdd
    api, secret = _hub_api_and_secret()
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


@dataclass(frozen=True)
class FolderPlan:
    """One publication folder and where it goes."""
    folder: Path
    repo_id: str
    files: Dict[str, int]  # name -> bytes


def plan_publications(root: str) -> List[FolderPlan]:
    """Every publication folder under `root` (e.g. `hub/published/`) with its files and its target Hub repo.

    A folder is named after its pretrained tag (`<model>.<tag>`), whose entry in `timm_nf.pretrained.PUBLISHED`
    names the repo. Works offline.

    Raises:
        PublishError: A folder is incomplete, holds foreign files, or is not a registered tag.
    """
    from timm.models import split_model_name_tag
    from timm_nf.pretrained import find_published

    base = Path(root)
    if not base.is_dir():
        raise PublishError(f'{root!r} is not a folder of publications')
    plans = []
    for folder in sorted(p for p in base.iterdir() if p.is_dir()):
        names = check_publication_folder(str(folder))
        entry = find_published(*split_model_name_tag(folder.name))
        if entry is None:
            raise PublishError(f'{folder} is not a registered pretrained tag (timm_nf/pretrained.py); upload it alone '
                               f'with `python hub/publish.py --out {folder} --repo-id OWNER/REPO --push`')
        plans.append(FolderPlan(folder, entry.hub_id, {n: (folder / n).stat().st_size for n in names}))
    if not plans:
        raise PublishError(f'{root!r} holds no publication folders')
    return plans


def hub_status(plans: List[FolderPlan], timeout: float = 10.0) -> Tuple[Optional[Dict[str, bool]], str]:
    """Which of the planned Hub repos exist, asked of the Hub one repo at a time.

    Args:
        plans: The folders of `plan_publications`.
        timeout: Seconds per request (a single attempt, no retries).

    Returns:
        ({repo id: exists}, '') when the Hub answered for every repo, else (None, why it could not be asked:
        offline mode, no connection, an HTTP error), after the first failure.
    """
    import huggingface_hub
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, RepositoryNotFoundError
    if huggingface_hub.constants.HF_HUB_OFFLINE:
        return None, 'HF_HUB_OFFLINE is set'
    api, secret = _hub_api_and_secret()
    status: Dict[str, bool] = {}
    for plan in plans:
        try:
            api.model_info(plan.repo_id, timeout=timeout)
            status[plan.repo_id] = True
        except GatedRepoError:
            status[plan.repo_id] = True  # it exists, this token may not read it
        except RepositoryNotFoundError:
            status[plan.repo_id] = False
        except HfHubHTTPError as e:
            if getattr(getattr(e, 'response', None), 'status_code', None) != 404:
                return None, _one_line(e, secret)
            status[plan.repo_id] = False
        except Exception as e:  # network and offline-mode errors come from several libraries
            return None, _one_line(e, secret)
    return status, ''


def _git_blob_sha1(path: Path) -> str:
    data = path.read_bytes()
    return hashlib.sha1(b'blob %d\0' % len(data) + data).hexdigest()


def _same_on_hub(api, plan: FolderPlan) -> bool:
    """Whether the repo's main branch holds exactly the folder's files (LFS files by sha256, others by git blob)."""
    from huggingface_hub.errors import RepositoryNotFoundError
    from timm_nf.training.checkpoint import file_sha256
    try:
        remote = {f.path: f for f in api.list_repo_tree(plan.repo_id, expand=True) if hasattr(f, 'blob_id')}
    except RepositoryNotFoundError:
        return False
    if set(remote) - {'.gitattributes'} != set(plan.files):
        return False
    for name in plan.files:
        f, path = remote[name], plan.folder / name
        if f.lfs is not None:
            if f.lfs.sha256 != file_sha256(str(path)):
                return False
        elif f.blob_id != _git_blob_sha1(path):
            return False
    return True


def push_publications(plans: List[FolderPlan]) -> List[Tuple[FolderPlan, str]]:
    """Upload each planned folder that the Hub does not hold identically yet, one commit per folder.

    Returns:
        (plan, commit URL or 'identical on the Hub') per folder.

    Raises:
        UploadError: No token, or a Hub call failed (one line, token redacted); folders are never modified, and
            what was uploaded before the failure stays uploaded.
    """
    api, secret = _hub_api_and_secret()
    if not secret:
        raise UploadError('no Hugging Face token: set HF_TOKEN or run `hf auth login`; nothing was uploaded')
    out = []
    for plan in plans:
        try:
            same = _same_on_hub(api, plan)
        except Exception as e:  # network, HTTP, auth and offline-mode errors come from several libraries
            done = f' ({len(out)} folders done before)' if out else ''
            raise UploadError(f'cannot compare {plan.folder} with {plan.repo_id} ({_one_line(e, secret)}){done}; '
                              f'retry with `python hub/publish.py --all --push`') from None
        out.append((plan, 'identical on the Hub' if same else push_folder(str(plan.folder), plan.repo_id)))
    return out
