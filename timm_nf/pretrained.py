"""Published weights of timm-nf models, as data: one entry per pretrained tag.

Each entry names a registered architecture and a tag; the family modules turn every entry into a pretrained cfg
`<model>.<tag>` with `hf_hub_id='timm-nf/<model>.<tag>'`, so that

    timm.create_model('crelu_resnet20.digits', pretrained=True)

fetches the Hub repo `hub/publish.py` wrote. A tag cannot carry keyword arguments: an entry is only valid on a
name whose defaults rebuild exactly the trained architecture (checked when publishing and by the tests).
Keyword variants, and weights of architectures timm owns, are published as `hf-hub:` repos instead, whose
`config.json` carries the `model_args`.

An entry holds the preprocessing of its pretrained cfg (the same values `config.json` of its repo holds, which
the tests check) and points to the results file of `train/validate.py` its metrics come from, on the split it
names (`metrics_split`); metrics are never typed in.
"""
from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

from timm_nf.constants import CIFAR10_MEAN, CIFAR10_STD, FASHION_MNIST_MEAN, FASHION_MNIST_STD
from timm_nf.data.fashion_mnist import FASHION_MNIST_CLASSES
from timm_nf.paper import StudyRow, all_study_rows, resnet20_seeds, resnet20_study_rows

__all__ = [
    'PretrainedWeights', 'PUBLISHED', 'PUBLISHED_FASHION_MNIST_ROWS', 'HUB_NAMESPACE', 'WeightsUnavailableError',
    'NoPretrainedWeightsError', 'digits_weights', 'fashion_mnist_weights', 'fashion_mnist_study_weights',
    'find_published', 'tags_of', 'unavailable_weights_error', 'missing_weights_error',
]

HUB_NAMESPACE = 'timm-nf'
HUB_URL = 'https://huggingface.co'


@dataclass(frozen=True)
class PretrainedWeights:
    """One pretrained tag of a timm-nf model.

    Args:
        model: Registered architecture name; its defaults must rebuild the trained model exactly.
        tag: Pretrained tag (`timm.create_model(f'{model}.{tag}', pretrained=True)`).
        dataset: Dataset name as `train/validate.py` records it (`digits`, `imagenet`, ...).
        dataset_name: Human-readable dataset description for cards.
        recipe: Training recipe (YAML of `train/train.py`), relative to the timm-nf repository's root.
        results: Results file (JSON of `train/validate.py`) the metrics come from, relative to the root.
        published: Folder `hub/publish.py` wrote for the Hub repo, relative to the root (committed with weights).
        num_classes: Classifier outputs.
        input_size: (C, H, W) the weights were trained and validated at.
        crop_pct: Center crop fraction of validation.
        interpolation: Resize interpolation.
        mean: Normalization mean.
        std: Normalization std.
        label_names: Class names by classifier index.
        license: License of the weights.
        origin: How the weights were chosen, for the card (e.g. the study row and seed selection); may be empty.
        selection: What was chosen, by which measure (e.g. the seed, best of 3 by final validation error), which
            the card says beside each number; empty when nothing was (a single run's final weights). Everything
            is chosen on the validation split: whether that is the split of the metrics is `metrics_split`.
        study: The aggregate of the study the weights were chosen from (JSON of `train/study.py report`),
            relative to the root, from which the card gives the median over seeds; empty for a single run.
        metrics_split: The split of `dataset` the metrics (`results`) and the study's seed median come from:
            'validation', the split `selection` chose on (the digits have no other), or 'test', which nothing
            was chosen on (Fashion-MNIST's official test images).
    """
    model: str
    tag: str
    dataset: str
    dataset_name: str
    recipe: str
    results: str
    published: str
    num_classes: int
    input_size: Tuple[int, int, int]
    crop_pct: float
    interpolation: str
    mean: Tuple[float, ...]
    std: Tuple[float, ...]
    label_names: Optional[Tuple[str, ...]] = None
    license: str = 'apache-2.0'
    origin: str = ''
    selection: str = ''
    study: str = ''
    metrics_split: str = 'validation'

    @property
    def name(self) -> str:
        """`<model>.<tag>`, the name `timm.create_model` takes."""
        return f'{self.model}.{self.tag}'

    @property
    def hub_id(self) -> str:
        """Hub repo of the weights."""
        return f'{HUB_NAMESPACE}/{self.name}'

    @property
    def hub_url(self) -> str:
        return f'{HUB_URL}/{self.hub_id}'

    def pretrained_cfg(self) -> Dict[str, Any]:
        """Keys this entry sets on top of the architecture's pretrained cfg."""
        cfg = dict(
            hf_hub_id=self.hub_id, num_classes=self.num_classes, input_size=tuple(self.input_size),
            crop_pct=self.crop_pct, interpolation=self.interpolation, mean=tuple(self.mean), std=tuple(self.std),
            license=self.license,
        )
        if self.label_names:
            cfg['label_names'] = tuple(self.label_names)
        return cfg


def digits_weights(model: str, recipe: str, img_size: int, **kwargs: str) -> PretrainedWeights:
    """A `<model>.digits` tag: weights trained on the embedded digits at `img_size` with `recipe`, published by
    `hub/publish.py` into `hub/published/<model>.digits` from the results file `hub/results/<model>.digits.json`;
    `kwargs`: `origin`, `selection`, `study`."""
    return PretrainedWeights(
        model=model,
        tag='digits',
        dataset='digits',
        dataset_name=f"scikit-learn's 8x8 handwritten digits (UCI optdigits), upsampled to {img_size}x{img_size} RGB",
        recipe=recipe,
        results=f'hub/results/{model}.digits.json',
        published=f'hub/published/{model}.digits',
        num_classes=10,
        input_size=(3, img_size, img_size),
        crop_pct=1.0,
        interpolation='bilinear',
        mean=CIFAR10_MEAN,
        std=CIFAR10_STD,
        label_names=tuple(str(i) for i in range(10)),
        **kwargs,
    )


def fashion_mnist_weights(model: str, recipe: str = 'train/recipes/fashion_mnist.yaml',
                          **kwargs: str) -> PretrainedWeights:
    """A `<model>.fashion_mnist` tag: weights trained on Fashion-MNIST at its own 28 px with `recipe`, published by
    `hub/publish.py` into `hub/published/<model>.fashion_mnist` from the results file
    `hub/results/<model>.fashion_mnist.json`, which measures the official test split (nothing is chosen on it);
    `kwargs`: `origin`, `selection`, `study`."""
    return PretrainedWeights(
        model=model,
        tag='fashion_mnist',
        dataset='fashion_mnist',
        dataset_name="Fashion-MNIST (Zalando's 28x28 grayscale article images, 10 classes), gray replicated to RGB",
        recipe=recipe,
        results=f'hub/results/{model}.fashion_mnist.json',
        published=f'hub/published/{model}.fashion_mnist',
        num_classes=len(FASHION_MNIST_CLASSES),
        input_size=(3, 28, 28),
        crop_pct=1.0,
        interpolation='bilinear',
        mean=FASHION_MNIST_MEAN,
        std=FASHION_MNIST_STD,
        label_names=FASHION_MNIST_CLASSES,
        metrics_split='test',
        **kwargs,
    )


def _row_text(row: StudyRow) -> str:
    """What a study row is, for the origin of its tag: the Table 2 row with the paper's numbers, or an extension."""
    if row.paper is not None:
        c10, c100 = row.paper.errors
        return (f"Table 2's {row.label} row (the paper's ResNet-110: {c10:.2f}% / {c100:.2f}% CIFAR-10 / "
                f'CIFAR-100 test error)')
    return f'the {row.label} row (an extension of the paper\'s Table 2)'


def _selection(seeds: int) -> str:
    """A study's seed selection (`train.reproduction.study`: on validation only, ties broken by training loss)."""
    return f'the best of {seeds} seeds by final validation error (then final training loss)'


def _study_weights(row: StudyRow) -> PretrainedWeights:
    """The best seed of one row of the digits reproduction study (`train/study.py`, docs/REPRODUCTION.md)."""
    run = 'python train/study.py run' + (' --depth 110' if 'resnet110' in row.model else '')
    return digits_weights(
        row.model, 'train/recipes/study_digits.yaml', 16,
        origin=(f'The final weights of the best of 3 seeds (lowest final validation error, then lowest final '
                f"training loss) of {_row_text(row)} in timm-nf's small-scale reproduction of Shang, Chiu & Sohn "
                f'(AAAI 2017): `{run}`, then `publish`. Every seed, the paper\'s numbers side by side and which of '
                "the paper's claims held: docs/REPRODUCTION.md in the timm-nf repository."),
        # The study has no test split: the seed is chosen on the 360 validation images its card reports.
        selection=_selection(3),
        study='docs/reproduction/results.json')


def fashion_mnist_study_weights(row: StudyRow) -> PretrainedWeights:
    """The best seed of one row of the Fashion-MNIST reproduction study at ResNet-20 (`train/study.py --study
    fashion_mnist`, docs/REPRODUCTION.md): chosen on the validation split, measured on the official test split."""
    seeds = len(resnet20_seeds(row))
    return fashion_mnist_weights(
        row.model,
        origin=(f'The final weights of the best of {seeds} seeds (lowest final validation error, then lowest final '
                f"training loss) of {_row_text(row)} at ResNet-20 in timm-nf's Fashion-MNIST reproduction of "
                'Shang, Chiu & Sohn (AAAI 2017): `python train/study.py run --study fashion_mnist`, then '
                "`python train/study.py publish --study fashion_mnist`. Every seed, the paper's numbers side by "
                "side and which of the paper's claims held: docs/REPRODUCTION.md in the timm-nf repository."),
        selection=_selection(seeds),
        study='docs/reproduction/fashion_mnist/results.json')


# Study rows without weights. Since the design decisions every row trains at both depths, so the list is empty; a row
# goes here until every seed of it has finished and one trained (its card's "best of 3" holds only then;
# tests/test_study.py checks this against docs/reproduction/results.json).
UNTRAINED_STUDY_ROWS: Tuple[str, ...] = ()

# The Fashion-MNIST rows published as `<model>.fashion_mnist`: a row goes here once every seed of it has finished
# and one trained (its "best of N" is then what it says), and `train/study.py publish --study fashion_mnist` has
# written its folder. A static list, as the registry reads no file at runtime; tests/test_fashion_cards.py checks
# it against docs/reproduction/fashion_mnist/results.json (empty while that file does not exist).
PUBLISHED_FASHION_MNIST_ROWS: Tuple[str, ...] = (
    'crelu_resnet20_relu_plain', 'crelu_resnet20_relu_plain_nobias', 'normprop_resnet20_v1', 'normprop_resnet20',
    'crelu_resnet20_relu', 'crelu_resnet20_relu_x2', 'crelu_resnet20_plain', 'crelu_resnet20_plain_nobias',
    'normprop_resnet20_crelu', 'crelu_resnet20', 'nf_resnet20', 'nf_resnet20_crelu')

PUBLISHED: Tuple[PretrainedWeights, ...] = (
    digits_weights('crelu_resnet20', 'train/recipes/digits.yaml', 32, origin=(
        "The final weights of a single training run (seed 0) of the README's main job, `train/digits_demo.sh` "
        '(`train/train.py` with `train/recipes/digits.yaml`): no seed and no checkpoint was chosen.')),
) + tuple(_study_weights(row) for row in all_study_rows() if row.model not in UNTRAINED_STUDY_ROWS) + tuple(
    fashion_mnist_study_weights(row) for row in resnet20_study_rows() if row.model in PUBLISHED_FASHION_MNIST_ROWS)


def find_published(model: str, tag: str) -> Optional[PretrainedWeights]:
    """The entry of `model.tag`, or None."""
    for entry in PUBLISHED:
        if entry.model == model and entry.tag == tag:
            return entry
    return None


def tags_of(model: str) -> Tuple[PretrainedWeights, ...]:
    """The published tags of architecture `model` (empty when it has none)."""
    return tuple(entry for entry in PUBLISHED if entry.model == model)


def _local_dir_call(entry: PretrainedWeights) -> str:
    """The call that loads `entry`'s committed folder, run from the root of a clone of the timm-nf repository."""
    return f"timm.create_model('local-dir:{entry.published}', pretrained=True)"


class NoPretrainedWeightsError(RuntimeError):
    """`pretrained=True` on a bare architecture name, whose weights are published under tags.

    A `RuntimeError`, as timm's own "No pretrained weights exist" error is, so that code catching that keeps
    working.
    """


def missing_weights_error(model: str, error: BaseException) -> Optional[NoPretrainedWeightsError]:
    """A one-line `NoPretrainedWeightsError` naming the tags of `model` for timm's error `error` about the bare
    name having no weights, or None when `error` is something else or `model` has no tags."""
    tags = tags_of(model)
    if not tags or not str(error).startswith('No pretrained weights exist'):
        return None
    names = ', '.join(entry.name for entry in tags)
    first = tags[0]
    return NoPretrainedWeightsError(
        f'No pretrained weights exist for {model}: the bare name is the architecture alone; its weights are the '
        f"tag{'s' if len(tags) > 1 else ''} {names}. From the root of a clone of the timm-nf repository: "
        f"{_local_dir_call(first)}; "
        f"timm.create_model('{first.name}', pretrained=True) once the tag is on the Hub ({first.hub_id})")


class WeightsUnavailableError(OSError):
    """The weights of a pretrained tag could not be fetched from the Hub (offline, not pushed yet, no access)."""


def _hub_unreachable(error: BaseException) -> bool:
    """Whether `error` (from huggingface_hub, raised through timm) says the repo or file is out of reach."""
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, RepositoryNotFoundError
    if isinstance(error, (LocalEntryNotFoundError, RepositoryNotFoundError)):
        return True
    # A connection the Hub (or a proxy) drops or resets surfaces as the HTTP client's transport error (httpx's or
    # requests', depending on the huggingface_hub release), which is neither an OSError nor huggingface_hub's own.
    if any(cls.__name__ in ('TransportError', 'ConnectionError') for cls in type(error).__mro__):
        return True
    status = getattr(getattr(error, 'response', None), 'status_code', None)
    return isinstance(error, HfHubHTTPError) and status in (401, 403, 404)


def unavailable_weights_error(
        model: str, tag: Optional[str], error: BaseException) -> Optional[WeightsUnavailableError]:
    """A one-line `WeightsUnavailableError` for a failed fetch of the published tag `model.tag`, or None when `error`
    is something else (or the tag is not one of timm-nf's).

    The message names the tag, its Hub repo and the `local-dir:` spec (relative to the root of a clone of the
    timm-nf repository, where every published folder is committed) that loads the same weights without the Hub.
    """
    entry = find_published(model, tag) if tag else None
    if entry is None or not _hub_unreachable(error):
        return None
    reason = ' '.join(str(error).split()).split('. ')[0][:160].rstrip('.') or type(error).__name__
    # The installed package has no repository around it: name the folder relative to a timm-nf checkout's root,
    # where it is committed, rather than guessing a path on this machine.
    hint = f'; a clone of the timm-nf repository holds them: from its root, {_local_dir_call(entry)}'
    return WeightsUnavailableError(
        f'the weights of {entry.name} could not be fetched from the Hub repo {entry.hub_id} '
        f'({type(error).__name__}: {reason}){hint}')
