"""The checkout's record of published weights: where it lives, and the results each tag's card cites.

The installed `timm_nf.pretrained` registry names these files relative to the repository root; this module, which
only runs in a checkout, resolves them from its own location.
"""
import json
from pathlib import Path
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

from timm_nf.pretrained import PretrainedWeights
from train.reproduction.study import error_key

__all__ = ['MAX_WEIGHTS_IN_GIT', 'REPO_ROOT', 'entry_results', 'load_results_row', 'study_seeds', 'SeedSpread']

REPO_ROOT = Path(__file__).resolve().parents[2]
# Every published tag's weights are committed with its card: until a push, the repository is their only durable
# copy. The limit keeps the repository light enough to clone; the largest tag today is ResNet-56 at double width
# (13.6 MB). A larger tag is a decision to take openly (e.g. Git LFS), not a file to drop from git.
MAX_WEIGHTS_IN_GIT = 20_000_000


def load_results_row(path: Path) -> Dict[str, Any]:
    """The single results row of a JSON results file of `train/validate.py`."""
    data = json.loads(Path(path).read_text())
    if isinstance(data, list):
        if len(data) != 1:
            raise ValueError(f'{path} holds {len(data)} results rows; a published tag needs exactly one')
        data = data[0]
    if not isinstance(data, dict):
        raise ValueError(f'{path} is not a results file of train/validate.py')
    return data


def entry_results(entry: PretrainedWeights, root: Optional[Path] = None) -> Dict[str, Any]:
    """The results row of a registered tag (its `results` file), checked against the entry.

    Raises:
        FileNotFoundError: The results file is not in the checkout at `root` (default: this repository).
        ValueError: The file measured another model, model arguments, dataset or split.
    """
    path = (root or REPO_ROOT) / entry.results
    row = load_results_row(path)
    expected_args = {'num_classes': entry.num_classes}
    problems = []
    if row.get('model') != entry.model:
        problems.append(f"model {row.get('model')!r} (expected {entry.model!r})")
    if row.get('model_args') != expected_args:
        problems.append(f"model_args {row.get('model_args')!r} (expected {expected_args!r}: a tag carries none)")
    if row.get('dataset') != entry.dataset:
        problems.append(f"dataset {row.get('dataset')!r} (expected {entry.dataset!r})")
    if row.get('split') != entry.metrics_split:
        problems.append(f"split {row.get('split')!r} (expected {entry.metrics_split!r})")
    if problems:
        raise ValueError(f'{path} does not belong to {entry.name}: {"; ".join(problems)}')
    return row


@dataclass(frozen=True)
class SeedSpread:
    """The seeds a published tag was chosen from, by their final top-1 (%) on the tag's metrics split in the study's
    aggregate.

    Attributes:
        top1: (seed, final top-1 on `split`, or None for a seed that diverged at every lr) per seed.
        median: Median over the seeds (None when it lands on a diverged one), the study's own statistic.
        chosen: The seed that was published.
        source: The aggregate file, relative to the repository root.
        split: The split of the values, the entry's `metrics_split`: 'validation', the split the seed was chosen
            on, or 'test', measured once per seed after training and used for nothing else.
    """
    top1: Tuple[Tuple[int, Optional[float]], ...]
    median: Optional[float]
    chosen: int
    source: str
    split: str = 'validation'


def _study_rows(data: Dict[str, Any]) -> List[Dict[str, Any]]:
    """The rows of every part of a study group's aggregate: the top level and each part under its key ('deep',
    'depth20', ...)."""
    parts = [data] + [v for v in data.values() if isinstance(v, dict) and 'rows' in v]
    return [row for part in parts for row in part['rows']]


def study_seeds(entry: PretrainedWeights, root: Optional[Path] = None) -> Optional[SeedSpread]:
    """The seeds of the study row a tag's weights were chosen from (None for a tag that is a single run), on the
    entry's metrics split: final validation error, or the final weights' test error for a tag measured on test.

    Raises:
        FileNotFoundError: The study's aggregate is not in the checkout at `root` (default: this repository).
        ValueError: The aggregate has no trained row for the tag's model, a seed of it has not finished (its
            "best of N" would not hold yet), or it has no values on the entry's split.
    """
    if not entry.study:
        return None
    path = (root or REPO_ROOT) / entry.study
    row = next((r for r in _study_rows(json.loads(path.read_text())) if r['model'] == entry.model), None)
    if row is None or row.get('best_seed') is None:
        raise ValueError(f'{path} has no trained row for {entry.model}, whose best seed is {entry.name}')
    if row['seeds_finished'] != row['seeds_planned']:
        raise ValueError(f"{path}: {row['seeds_planned'] - row['seeds_finished']} of the {row['seeds_planned']} "
                         f'seeds of {entry.model} have not finished; publish {entry.name} once they have')
    key = error_key(entry.metrics_split)
    if key not in row:
        raise ValueError(f'{path} has no {entry.metrics_split} errors for {entry.model}, whose card reports that split')

    def top1(error: Optional[float]) -> Optional[float]:
        return None if error is None else round(100.0 - error, 4)

    return SeedSpread(
        top1=tuple((s['seed'], top1(s[key])) for s in row['seeds']),
        median=top1(row[key]['median']), chosen=row['best_seed']['seed'], source=entry.study,
        split=entry.metrics_split)
