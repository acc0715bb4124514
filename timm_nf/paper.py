"""The published results the study compares against, and the call that builds each row's model.

Shang, Chiu & Sohn (AAAI 2017): Table 1 (statistics of the features after the last activation), Table 2 (CIFAR
test error %, ResNet-110, median of 5 runs) and Table 4 (ImageNet validation error %, single crop). Numbers are
copied from the paper (`shared/seeds/000_*`).
"""
from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

__all__ = [
    'PaperRow', 'StudyRow', 'Table1Row', 'TABLE1', 'TABLE2', 'TABLE4', 'DEEP_STUDY_ROWS', 'RESNET20_SEEDS',
    'RESNET20_TABLE1_SEEDS', 'all_study_rows', 'call_str', 'deep_study_rows', 'resnet20_seeds', 'resnet20_study_rows',
    'study_rows',
]


@dataclass(frozen=True)
class PaperRow:
    norm: str
    act: str
    model: str  # registered name
    kwargs: Tuple[Tuple[str, Any], ...] = ()  # keyword arguments on top of the name
    errors: Tuple[float, ...] = ()  # Table 2: CIFAR-10, CIFAR-100; Table 4: top-1, top-5


def call_str(row: PaperRow) -> str:
    args = ''.join(f', {k}={v!r}' for k, v in row.kwargs)
    return f"timm.create_model('{row.model}'{args})"


TABLE2 = (
    PaperRow('Plain', 'ReLU', 'crelu_resnet110_relu_plain', errors=(7.78, 36.10)),
    PaperRow('Plain (no bias)', 'ReLU', 'crelu_resnet110_relu_plain_nobias', errors=(12.16, 40.00)),
    PaperRow('NormProp', 'ReLU', 'normprop_resnet110_v1', errors=(11.60, 37.60)),
    PaperRow('NormProp2', 'ReLU', 'normprop_resnet110', errors=(7.46, 31.71)),
    PaperRow('BatchNorm', 'ReLU', 'crelu_resnet110_relu', errors=(6.35, 27.46)),
    PaperRow('BatchNorm (double)', 'ReLU', 'crelu_resnet110_relu_x2', errors=(7.27, 27.33)),
    PaperRow('Plain', 'CReLU', 'crelu_resnet110_plain', errors=(6.86, 28.24)),
    PaperRow('Plain (no bias)', 'CReLU', 'crelu_resnet110_plain_nobias', errors=(7.17, 28.71)),
    PaperRow('NormProp2', 'CReLU', 'normprop_resnet110_crelu', errors=(7.22, 29.29)),
    PaperRow('BatchNorm', 'CReLU', 'crelu_resnet110', errors=(5.72, 25.89)),
)

_T4_ERRORS: Dict[Tuple[int, str, str], Tuple[float, float]] = {
    (34, 'ReLU', 'Plain'): (29.92, 10.84), (34, 'ReLU', 'NP2'): (29.23, 10.29),
    (34, 'ReLU', 'NP3'): (29.72, 10.54), (34, 'ReLU', 'BN'): (26.73, 8.74),
    (34, 'CReLU', 'Plain'): (28.85, 10.28), (34, 'CReLU', 'NP2'): (29.31, 10.29),
    (34, 'CReLU', 'NP3'): (28.28, 9.84), (34, 'CReLU', 'BN'): (25.62, 8.28),
    (50, 'ReLU', 'Plain'): (31.48, 12.27), (50, 'ReLU', 'NP2'): (29.75, 10.80),
    (50, 'ReLU', 'NP3'): (28.08, 9.74), (50, 'ReLU', 'BN'): (24.01, 7.02),
    (50, 'CReLU', 'Plain'): (28.00, 9.58), (50, 'CReLU', 'NP2'): (29.06, 10.31),
    (50, 'CReLU', 'NP3'): (26.12, 8.51), (50, 'CReLU', 'BN'): (23.03, 6.67),
    (101, 'ReLU', 'BN'): (22.44, 6.21), (101, 'CReLU', 'BN'): (21.89, 5.92),
}


def _table4_row(depth: int, act: str, norm: str) -> PaperRow:
    relu = (('act_layer', 'relu'),) if act == 'ReLU' else ()
    crelu = (('act_layer', 'crelu'),) if act == 'CReLU' else ()
    if norm == 'BN':
        return PaperRow(norm, act, f'crelu_resnet{depth}', relu, _T4_ERRORS[depth, act, norm])
    if norm == 'Plain':
        return PaperRow(norm, act, f'crelu_resnet{depth}', relu + (('norm', 'none'),), _T4_ERRORS[depth, act, norm])
    version = (('normprop_version', 2),) if norm == 'NP2' else ()  # NormProp3 is the ImageNet default
    return PaperRow(norm, act, f'normprop_resnet{depth}', crelu + version, _T4_ERRORS[depth, act, norm])


TABLE4 = tuple(_table4_row(depth, act, norm) for (depth, act, norm) in _T4_ERRORS)



@dataclass(frozen=True)
class Table1Row:
    """Shang et al. Table 1: mean +- std of the activations after the last ReLU (before the classifier) and their
    non-zero ratio (NZR), of their trained ResNet-110s. The paper's "NormProp" here has a CReLU variant, which
    Table 2 only has for NormProp2, so it is taken as NormProp2."""
    norm: str
    act: str
    mean: float
    std: float
    nzr: float


TABLE1 = (
    Table1Row('Plain', 'ReLU', 30.81, 36.69, 0.14),
    Table1Row('NormProp2', 'ReLU', 28.68, 33.58, 0.21),
    Table1Row('BatchNorm', 'ReLU', 3.77, 4.43, 0.51),
    Table1Row('Plain', 'CReLU', 24.53, 26.02, 0.50),
    Table1Row('NormProp2', 'CReLU', 10.41, 10.28, 0.50),
    Table1Row('BatchNorm', 'CReLU', 1.94, 1.99, 0.50),
)

@dataclass(frozen=True)
class StudyRow:
    """One row of the small-scale reproduction (`train/study.py`): a registered name that fully determines it.

    Args:
        model: Registered name (no keyword arguments, so its weights can carry a pretrained tag).
        norm: Normalization as the paper's tables name it.
        act: Activation.
        paper: The Table 2 row it reproduces (at depth 110 in the paper); None for an extension.
    """
    model: str
    norm: str
    act: str
    paper: Optional[PaperRow] = None

    @property
    def label(self) -> str:
        return f'{self.norm} {self.act}'

    @property
    def extension(self) -> bool:
        return self.paper is None


def study_rows(depth: int = 56) -> Tuple[StudyRow, ...]:
    """Table 2's rows at a CIFAR depth, then the extensions: NormProp3 (from Table 4) and the NF-ResNet (Brock et al.).

    Args:
        depth: CIFAR-layout depth with registered row names (20, 56 or 110).
    """
    rows = tuple(StudyRow(p.model.replace('resnet110', f'resnet{depth}'), p.norm, p.act, p) for p in TABLE2)
    return rows + (
        StudyRow(f'normprop_resnet{depth}_v3', 'NormProp3', 'ReLU'),
        StudyRow(f'normprop_resnet{depth}_v3_crelu', 'NormProp3', 'CReLU'),
        StudyRow(f'nf_resnet{depth}', 'NF (scaled WS)', 'ReLU'),
        StudyRow(f'nf_resnet{depth}_crelu', 'NF (scaled WS)', 'CReLU'),
    )


# The rows the study also trains at the paper's own depth, ResNet-110: the four of Table 1 and Fig. 2 (plain and
# BatchNorm, ReLU and CReLU), which carry the paper's central claim.
DEEP_STUDY_ROWS: Tuple[Tuple[str, str], ...] = (
    ('Plain', 'ReLU'), ('Plain', 'CReLU'), ('BatchNorm', 'ReLU'), ('BatchNorm', 'CReLU'))


def deep_study_rows() -> Tuple[StudyRow, ...]:
    """The `DEEP_STUDY_ROWS` of `study_rows(110)`."""
    return tuple(r for r in study_rows(110) if (r.norm, r.act) in DEEP_STUDY_ROWS)


def all_study_rows() -> Tuple[StudyRow, ...]:
    """Every row the study trains: the ResNet-56 grid, then the ResNet-110 rows."""
    return study_rows(56) + deep_study_rows()


def resnet20_study_rows() -> Tuple[StudyRow, ...]:
    """The rows of the ResNet-20 studies (the digits and Fashion-MNIST): Table 2's ten rows and the NF-ResNet ReLU /
    CReLU pair (the NormProp3 extension stays at ResNet-56)."""
    return tuple(r for r in study_rows(20) if r.norm != 'NormProp3')


# Seeds of each row of the ResNet-20 studies. Here, not in train/, because the pretrained-tag registry of the
# installed package states "best of N seeds" for each published row and cannot import the repository's tooling.
RESNET20_SEEDS: Tuple[int, ...] = (0, 1, 2)
RESNET20_TABLE1_SEEDS: Tuple[int, ...] = (0, 1, 2, 3, 4)  # the rows of Table 1, which carry the central claim


def resnet20_seeds(row: StudyRow) -> Tuple[int, ...]:
    """The seeds a row of the ResNet-20 studies trains: `RESNET20_TABLE1_SEEDS` for the `DEEP_STUDY_ROWS` (those of
    Table 1), `RESNET20_SEEDS` for the others."""
    return RESNET20_TABLE1_SEEDS if (row.norm, row.act) in DEEP_STUDY_ROWS else RESNET20_SEEDS
