"""Results of the small-scale reproductions of Shang, Chiu & Sohn (AAAI 2017), Table 2 (`train/study.py`).

A study is a `StudyDefinition`: the dataset, the recipe, the depth, the rows, the seeds, the base lr and what
"trained" means. The digits at ResNet-56, ResNet-110 and ResNet-20 and Fashion-MNIST at ResNet-20 are the same code
with four definitions (`STUDIES`). This module reads a study's run directories, aggregates each row over its seeds,
checks the paper's qualitative claims against the measurements, and renders the tables `docs/REPRODUCTION.md` and
`MODEL_CARDS.md` show. The committed aggregate of a study is `<data>/results.json`; the per-run files it comes from
are committed under `<data>/runs/` in the layout the study writes:

    <runs>/<model>/seed<S>-lr<LR>/summary.csv   train.py's per-epoch log (train_loss, eval_top1, ...)
    <runs>/<model>/seed<S>-lr<LR>/study.json    the run's outcome: trained, or diverged (and why)
    <runs>/<model>/seed<S>-lr<LR>/test.json     validate.py on the test split (studies whose dataset has one)

Selection (the best seed of a row) uses the validation split only. Verdicts use the test split where the dataset has
one (Fashion-MNIST's official 10k); the digits have none, so their verdicts use validation, where one image is
0.28% and validation error alone cannot order the rows: the comparisons also use the final training loss, the
epochs to reach the target validation top-1 and divergence at the base lr.
"""
import csv
import json
import math
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from timm_nf.paper import (
    DEEP_STUDY_ROWS, RESNET20_SEEDS, RESNET20_TABLE1_SEEDS, TABLE1, StudyRow, deep_study_rows, resnet20_study_rows,
    study_rows,
)

__all__ = [
    'CHANCE_LEVEL', 'CHANCE_LOSS', 'CLAIMS', 'EXIT_NONFINITE_LOSS', 'MAX_HALVINGS', 'RESULTS_FILE', 'STUDIES',
    'SeedResult', 'StudyDefinition', 'StudyGroup', 'all_rows', 'claim_verdicts', 'classify_run', 'collect_all',
    'collect_study', 'comparison_table', 'error_key', 'load_results', 'lr_name', 'read_outcome', 'read_summary',
    'replace_blocks', 'results_table', 'run_dir', 'verdict_changes',
]

REPO = Path(__file__).resolve().parents[2]
RESULTS_FILE = REPO / 'docs' / 'reproduction' / 'results.json'  # the digits study (ResNet-56, -110 and -20)
MAX_HALVINGS = 4  # base lr / 16 at the most
CHANCE_LOSS = math.log(10)  # cross-entropy of a uniform guess over 10 classes (both datasets have 10)
# A run that ends with its training loss within 5% of chance learned nothing: measured here, plain CReLU ResNet-56s
# whose loss did not explode sat at 2.3025-2.3028 (uniform output) for all 30 epochs.
CHANCE_LEVEL = 0.95 * CHANCE_LOSS
# Validation top-1 (%) below which a run has not left chance (10 classes: 10%), for the early stop: 1.5x chance,
# 3 standard deviations of a guess on the digits' 360 validation images and 12 on Fashion-MNIST's 5,000.
CHANCE_TOP1_MAX = 15.0
EXIT_NONFINITE_LOSS = 3  # train/train.py's exit status for a NaN / infinite loss
DATASET_NAMES = {'digits': 'digits', 'fashion_mnist': 'Fashion-MNIST'}  # as the docs' tables name them


@dataclass(frozen=True)
class StudyDefinition:
    """One grid of the reproduction: everything that differs between the digits and Fashion-MNIST studies.

    Args:
        name: Key in `STUDIES` (`<dataset><depth>`).
        dataset: `--dataset` of train.py / validate.py.
        recipe: train.py `--config`, relative to the repository root.
        depth: CIFAR-layout depth of the rows.
        rows: The rows trained.
        seeds: Seeds of each row ...
        table1_seeds: ... except the rows of Shang et al.'s Table 1 (plain and BatchNorm, ReLU and CReLU), which
            carry the paper's central claim and get these.
        base_lr: The recipe's lr, where the lr-halving rule starts.
        target_top1: Validation top-1 (%) whose first epoch the comparisons count ("epochs to target").
        verdict_split: 'test' (verdicts on the test error of the final weights) or 'validation' (a dataset without
            a test split).
        eval_images: Images of `verdict_split`: errors one image apart are a tie.
        chance_stop_epochs: A run still at chance after this many epochs (`at_chance_early`: training loss and
            validation top-1) is stopped and counts as diverged (None: every run goes to the end).
        tag: Pretrained tag of the published best seeds.
    """
    name: str
    dataset: str
    recipe: str
    depth: int
    rows: Tuple[StudyRow, ...]
    seeds: Tuple[int, ...]
    table1_seeds: Tuple[int, ...]
    base_lr: float
    target_top1: float
    verdict_split: str
    eval_images: int
    chance_stop_epochs: Optional[int]
    tag: str

    def seeds_of(self, row: StudyRow) -> Tuple[int, ...]:
        return self.table1_seeds if (row.norm, row.act) in DEEP_STUDY_ROWS else self.seeds


@dataclass(frozen=True)
class StudyGroup:
    """Studies whose committed data share one folder and one results.json: the first is the top level, the others
    sit under their key (e.g. the digits' ResNet-110 part under 'deep')."""
    data: Path
    doc_prefix: str  # marker prefix of the generated tables in docs/REPRODUCTION.md
    parts: Tuple[Tuple[str, StudyDefinition], ...]  # (key, study); the first key is ''
    # Another group whose committed verdicts this group's `comparison` table sets beside its own (`verdict_changes`).
    compare_with: Optional[str] = None

    def study(self, depth: int) -> StudyDefinition:
        for _, s in self.parts:
            if s.depth == depth:
                return s
        raise KeyError(depth)


_DIGITS = dict(dataset='digits', recipe='train/recipes/study_digits.yaml', seeds=(0, 1, 2),
               # The paper's initial lr 0.1 at batch 128, at the digits recipe's batch 32 by linear scaling.
               base_lr=0.025, target_top1=95.0, verdict_split='validation', eval_images=360, tag='digits')
STUDIES: Dict[str, StudyDefinition] = {s.name: s for s in (
    StudyDefinition('digits56', depth=56, rows=study_rows(56), table1_seeds=(0, 1, 2), chance_stop_epochs=None,
                    **_DIGITS),
    # The paper's own depth: the four rows of Table 1 and Fig. 2.
    StudyDefinition('digits110', depth=110, rows=deep_study_rows(), table1_seeds=(0, 1, 2), chance_stop_epochs=None,
                    **_DIGITS),
    # The depth of the Fashion-MNIST study, so that a verdict that moves can be told apart as depth or data.
    StudyDefinition('digits20', depth=20, rows=resnet20_study_rows(), table1_seeds=RESNET20_TABLE1_SEEDS,
                    chance_stop_epochs=8, **_DIGITS),
    StudyDefinition('fashion_mnist20', dataset='fashion_mnist', recipe='train/recipes/fashion_mnist.yaml', depth=20,
                    rows=resnet20_study_rows(), seeds=RESNET20_SEEDS, table1_seeds=RESNET20_TABLE1_SEEDS, base_lr=0.1,
                    target_top1=85.0, verdict_split='test', eval_images=10000, chance_stop_epochs=3,
                    tag='fashion_mnist'),
)}
GROUPS: Dict[str, StudyGroup] = {
    'digits': StudyGroup(RESULTS_FILE.parent, 'study', (
        ('', STUDIES['digits56']), ('deep', STUDIES['digits110']), ('depth20', STUDIES['digits20']))),
    'fashion_mnist': StudyGroup(RESULTS_FILE.parent / 'fashion_mnist', 'fashion_mnist', (
        ('', STUDIES['fashion_mnist20']),), compare_with='digits'),
}


def lr_name(lr: float) -> str:
    return f'{lr:g}'


def run_dir(runs: Path, model: str, seed: int, lr: float) -> Path:
    return Path(runs) / model / f'seed{seed}-lr{lr_name(lr)}'


def read_outcome(path: Path) -> Optional[Dict[str, Any]]:
    """The `study.json` of a finished run, or None while the run has not finished."""
    try:
        return json.loads((Path(path) / 'study.json').read_text())
    except FileNotFoundError:
        return None


def read_summary(path: Path) -> List[Dict[str, float]]:
    """train.py's summary.csv (one dict of floats per epoch); empty when the run wrote none."""
    try:
        with open(Path(path) / 'summary.csv', newline='') as f:
            return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]
    except FileNotFoundError:
        return []


@dataclass
class SeedResult:
    """One seed of one row: the runs of the lr-halving rule and the metrics of the run that trained."""
    seed: int
    lrs_diverged: List[float] = field(default_factory=list)
    diverge_reasons: List[str] = field(default_factory=list)
    lr: Optional[float] = None  # the lr that trained; None if every lr diverged or the seed is unfinished
    val_error: Optional[float] = None  # final epoch, %
    test_error: Optional[float] = None  # final weights on the test split, % (None: the dataset has no test split)
    train_loss: Optional[float] = None  # mean over the final epoch
    epochs_to_target: Optional[int] = None  # first epoch (1-based) with validation top-1 >= the study's target
    train_loss_curve: List[float] = field(default_factory=list)
    val_top1_curve: List[float] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        return self.lr is not None or len(self.lrs_diverged) > MAX_HALVINGS


def read_test_top1(path: Path) -> Optional[float]:
    """Top-1 of a run's `test.json` (validate.py on the test split), or None while it has not been measured."""
    try:
        return float(json.loads((Path(path) / 'test.json').read_text())['top1'])
    except FileNotFoundError:
        return None


def collect_seed(runs: Path, model: str, seed: int, study: StudyDefinition) -> SeedResult:
    result = SeedResult(seed)
    for k in range(MAX_HALVINGS + 1):
        lr = study.base_lr / 2 ** k
        path = run_dir(runs, model, seed, lr)
        outcome = read_outcome(path)
        if outcome is None:
            break
        if outcome['status'] == 'diverged':
            result.lrs_diverged.append(lr)
            result.diverge_reasons.append(outcome['reason'])
            continue
        summary = read_summary(path)
        if study.verdict_split == 'test':
            test_top1 = read_test_top1(path)
            if test_top1 is None:
                break  # trained, but not measured on the test split yet: the seed is unfinished
            result.test_error = round(100.0 - test_top1, 4)
        result.lr = lr
        result.val_error = round(100.0 - summary[-1]['eval_top1'], 4)
        result.train_loss = summary[-1]['train_loss']
        result.train_loss_curve = [r['train_loss'] for r in summary]
        result.val_top1_curve = [r['eval_top1'] for r in summary]
        result.epochs_to_target = next(
            (i + 1 for i, r in enumerate(summary) if r['eval_top1'] >= study.target_top1 - 1e-6), None)
        break
    return result


def at_chance_early(summary: List[Dict[str, float]], chance_stop_epochs: Optional[int]) -> Optional[str]:
    """The reason to stop a run that is still at chance after `chance_stop_epochs` epochs, or None (keep training;
    also when the rule is off).

    Still at chance: the training loss within 5% of ln 10 *and* the validation top-1 below `CHANCE_TOP1_MAX`. The
    loss alone would also stop runs that learn slowly: measured here, a plain CReLU ResNet-20 on Fashion-MNIST at lr
    0.025 had a training loss of 2.25 after 3 epochs with 34% validation top-1, still rising.
    """
    if chance_stop_epochs is None or len(summary) < chance_stop_epochs:
        return None
    epoch = summary[chance_stop_epochs - 1]
    loss, top1 = epoch['train_loss'], epoch['eval_top1']
    if loss >= CHANCE_LEVEL and top1 < CHANCE_TOP1_MAX:  # a NaN loss ends train.py itself (exit status 3)
        return (f'training loss {loss:.4f} and validation top-1 {top1:.2f}% still at chance level (ln 10 = '
                f'{CHANCE_LOSS:.4f}, 10%) after {chance_stop_epochs} epochs: stopped')
    return None


def classify_run(exit_status: int, summary: List[Dict[str, float]],
                 chance_stop_epochs: Optional[int] = None) -> Tuple[str, str]:
    """('trained' | 'diverged', reason) of a finished (or stopped) train.py run, by the study's rule.

    Args:
        exit_status: train.py's exit status (negative: stopped by a signal, as the early stop at chance does).
        summary: Its summary.csv rows.
        chance_stop_epochs: The study's early stop at chance (`StudyDefinition.chance_stop_epochs`).

    Raises:
        ValueError: The run failed for another reason (bad input, a crash): not a result of the study.
    """
    if exit_status == EXIT_NONFINITE_LOSS:
        return 'diverged', 'non-finite training loss (see console.log)'
    early = at_chance_early(summary, chance_stop_epochs)
    if early is not None:
        return 'diverged', early
    if exit_status != 0 or not summary:
        raise ValueError(f'train.py exited with status {exit_status} after {len(summary)} epochs')
    final = summary[-1]['train_loss']
    if final >= CHANCE_LEVEL:
        return 'diverged', f'final training loss {final:.4f} at chance level (ln 10 = {CHANCE_LOSS:.4f})'
    return 'trained', ''


def _spread(values: Sequence[Optional[float]]) -> Dict[str, Any]:
    """Median, min and max of the seeds' values. None stands for "never" (epochs to a target that was not reached):
    it sorts above every number, and a statistic that lands on it is None."""
    if not values:
        return dict(median=None, min=None, max=None, values=[])
    vals = [math.inf if v is None else v for v in values]
    stats = (statistics.median(vals), min(vals), max(vals))
    return dict(zip(('median', 'min', 'max'), (None if math.isinf(x) else x for x in stats)), values=list(values))


def _row_summary(row: StudyRow, seeds: List[SeedResult], study: StudyDefinition) -> Dict[str, Any]:
    # A finished seed that diverged at every lr has no metrics: it counts as None ("diverged" / "never"), which ranks
    # below every seed that trained.
    done = [s for s in seeds if s.finished]
    trained = [s for s in done if s.lr is not None]
    # Chosen on validation only (the test split, where there is one, is reported, never used to choose).
    best = min(trained, key=lambda s: (s.val_error, s.train_loss), default=None)
    summary = dict(
        model=row.model, norm=row.norm, act=row.act, label=row.label, extension=row.extension,
        paper_errors=list(row.paper.errors) if row.paper else None,
        seeds_planned=len(seeds), seeds_finished=len(done), seeds_trained=len(trained),
        diverged_at_base_lr=sum(study.base_lr in s.lrs_diverged for s in seeds),
        lrs=sorted({s.lr for s in trained}, reverse=True),
        val_error=_spread([s.val_error for s in done]),
        train_loss=_spread([s.train_loss for s in done]),
        epochs_to_target=_spread([s.epochs_to_target for s in done]),
        best_seed=None if best is None else dict(seed=best.seed, lr=best.lr),
        seeds=[asdict(s) for s in seeds],
    )
    if study.verdict_split == 'test':
        summary['test_error'] = _spread([s.test_error for s in done])
    return summary


def collect_study(runs: Path, study: StudyDefinition) -> Dict[str, Any]:
    """Aggregate every row of `study` found under `runs` (unfinished seeds are reported as such)."""
    summaries = [_row_summary(r, [collect_seed(Path(runs), r.model, s, study) for s in study.seeds_of(r)], study)
                 for r in study.rows]
    return dict(study=study.name, dataset=study.dataset, depth=study.depth, seeds=list(study.seeds),
                table1_seeds=list(study.table1_seeds), target_top1=study.target_top1, base_lr=study.base_lr,
                verdict_split=study.verdict_split, eval_images=study.eval_images,
                complete=all(r['seeds_finished'] == r['seeds_planned'] for r in summaries), rows=summaries)


def collect_all(runs: Path, group: Optional[StudyGroup] = None) -> Dict[str, Any]:
    """Every part of a study group (default: the digits at ResNet-56, with ResNet-110 under 'deep' and ResNet-20
    under 'depth20')."""
    group = GROUPS['digits'] if group is None else group
    (_, main), *others = group.parts
    results = collect_study(runs, main)
    for key, study in others:
        results[key] = collect_study(runs, study)
    return results


def load_results(path: Path = RESULTS_FILE) -> Dict[str, Any]:
    return json.loads(Path(path).read_text())


# --- the paper's qualitative claims, as pairs of rows (norm, act) where the second should do better ------------
Pair = Tuple[Tuple[str, str], Tuple[str, str]]
CLAIMS: Tuple[Tuple[str, bool, Tuple[Pair, ...]], ...] = (
    ('CReLU helps without normalization', False, (
        (('Plain', 'ReLU'), ('Plain', 'CReLU')),
        (('Plain (no bias)', 'ReLU'), ('Plain (no bias)', 'CReLU')))),
    ('CReLU helps with normalization', False, (
        (('NormProp2', 'ReLU'), ('NormProp2', 'CReLU')),
        (('BatchNorm', 'ReLU'), ('BatchNorm', 'CReLU')))),
    ('NormProp2 beats NormProp', False, ((('NormProp', 'ReLU'), ('NormProp2', 'ReLU')),)),
    ('BatchNorm is best (ReLU)', False, tuple(
        ((n, 'ReLU'), ('BatchNorm', 'ReLU')) for n in ('Plain', 'Plain (no bias)', 'NormProp', 'NormProp2'))),
    ('BatchNorm is best (CReLU)', False, tuple(
        ((n, 'CReLU'), ('BatchNorm', 'CReLU')) for n in ('Plain', 'Plain (no bias)', 'NormProp2'))),
    ('CReLU beats doubling the width', False, ((('BatchNorm (double)', 'ReLU'), ('BatchNorm', 'CReLU')),)),
    ('Extension: CReLU helps NormProp3 and NF-ResNets', True, (
        (('NormProp3', 'ReLU'), ('NormProp3', 'CReLU')),
        (('NF (scaled WS)', 'ReLU'), ('NF (scaled WS)', 'CReLU')))),
)


def error_key(split: str) -> str:
    """The per-seed and per-row error of `collect_study` output on `split`: 'test_error' or 'val_error'."""
    return 'test_error' if split == 'test' else 'val_error'


def metrics(results: Dict[str, Any]) -> Tuple[Tuple[str, str, float], ...]:
    """Metrics that order two rows of a `collect_study` output: (key, label, largest difference that is a tie).
    Errors one image apart (0.28% of the digits' validation, 0.01% of Fashion-MNIST's test) are a tie: with a few
    seeds a single image is noise."""
    split = results.get('verdict_split', 'validation')
    return (('train_loss', 'final train loss', 0.0),
            ('epochs_to_target', f"epochs to {results['target_top1']:g}%", 0.0),
            (error_key(split), f"{'test' if split == 'test' else 'val'} error", 100.0 / results['eval_images']))


def _compare(a: Dict[str, Any], b: Dict[str, Any], threshold: float) -> str:
    """'B' / 'A': that row is lower with no overlap of the seeds' ranges; 'b' / 'a': lower median only; '=': tie;
    '?': a row has no trained seed."""
    if not a['values'] or not b['values']:
        return '?'
    ma, mb, a_min, b_min, a_max, b_max = (math.inf if v is None else v for v in (
        a['median'], b['median'], a['min'], b['min'], a['max'], b['max']))
    if ma == mb or abs(ma - mb) <= threshold + 1e-9:
        return '='
    lower_max, higher_min = (b_max, a_min) if mb < ma else (a_max, b_min)
    clear = lower_max < higher_min and higher_min - lower_max > threshold + 1e-9
    return ('B' if clear else 'b') if mb < ma else ('A' if clear else 'a')


def _verdict(comparisons: Sequence[Dict[str, Any]]) -> str:
    """The verdict of a claim from its comparisons' marks (the rule of `claim_verdicts`)."""
    marks = [m for c in comparisons for m in c['marks'].values()]
    return 'incomplete' if '?' in marks else 'failed' if 'A' in marks else \
        'held' if set(marks) <= {'B', 'b'} and 'B' in marks else 'not separated'


def claim_verdicts(results: Dict[str, Any]) -> List[Dict[str, Any]]:
    """Each claim's pairwise comparisons and verdict.

    Rule: a claim *held* when every comparison of every pair favours the row the paper says is better (by median)
    and at least one does so with no overlap between the seeds' ranges; it *failed* when any comparison favours
    the other row with no overlap; otherwise it is *not separated* at this scale.
    """
    by_key = {(r['norm'], r['act']): r for r in results['rows']}
    unfinished = {r['model'] for r in results['rows'] if not _finished(r, results)}
    measures = metrics(results)
    out = []
    for claim, extension, pairs in CLAIMS:
        comparisons = []
        for ka, kb in pairs:
            if ka not in by_key or kb not in by_key:
                continue  # a row this depth does not train (the ResNet-110 part of the study has four)
            a, b = by_key[ka], by_key[kb]
            marks = {key: _compare(a[key], b[key], thr) for key, _, thr in measures}
            comparisons.append(dict(worse=a['model'], better=b['model'], pair=(ka, kb), marks=marks,
                                    diverged=(a['diverged_at_base_lr'], b['diverged_at_base_lr'])))
        if not comparisons:
            continue
        verdict = _verdict(comparisons)
        # A verdict on rows with unfinished seeds (a grid trained over sessions) can still change.
        models = {m for c in comparisons for m in (c['worse'], c['better'])}
        provisional = verdict != 'incomplete' and bool(models & unfinished)
        out.append(dict(claim=claim, extension=extension, verdict=verdict, provisional=provisional,
                        comparisons=comparisons))
    return out


def _dataset_name(results: Dict[str, Any]) -> str:
    return DATASET_NAMES.get(results['dataset'], results['dataset'])


def _study_label(results: Dict[str, Any]) -> str:
    return f"{_dataset_name(results)}, ResNet-{results['depth']}"


def verdict_changes(parts: Sequence[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Each claim's verdict in every study of `parts` (`collect_study` outputs), and what moved it.

    Two studies that differ in one thing only (the depth on the same dataset, or the dataset at the same depth)
    tell that thing apart: a claim whose verdict differs between them, judged on the pairs of rows both train, was
    moved by it (ResNet-110 trains four rows, ResNet-20 no NormProp3). A pair of studies is left out while either
    verdict is incomplete or provisional (seeds unfinished).

    Returns:
        One dict per claim: 'claim', 'verdicts' (label of each study -> verdict, '' where the study does not train
        the claim's rows) and 'moved' (one 'depth: ...' or 'data: ...' entry per pair whose verdicts differ).
    """
    labels = [_study_label(r) for r in parts]
    verdicts = [{c['claim']: c for c in claim_verdicts(r)} for r in parts]
    out = []
    for claim, _, _ in CLAIMS:
        if not any(claim in v for v in verdicts):
            continue
        moved = []
        for i, j in ((i, j) for i in range(len(parts)) for j in range(i + 1, len(parts))):
            a, b = parts[i], parts[j]
            same_data, same_depth = a['dataset'] == b['dataset'], a['depth'] == b['depth']
            if same_data == same_depth or claim not in verdicts[i] or claim not in verdicts[j]:
                continue  # the same study, or two studies that differ in both dataset and depth
            ca, cb = verdicts[i][claim], verdicts[j][claim]
            if any(c['verdict'] == 'incomplete' or c['provisional'] for c in (ca, cb)):
                continue
            shared = {c['pair'] for c in ca['comparisons']} & {c['pair'] for c in cb['comparisons']}
            va, vb = (_verdict([x for x in c['comparisons'] if x['pair'] in shared]) for c in (ca, cb))
            if va == vb:
                continue
            part = '' if all(len(c['comparisons']) == len(shared) for c in (ca, cb)) else \
                f" (on the {len(shared)} pair{'s' if len(shared) > 1 else ''} both train)"
            moved.append((f"depth: {a['depth']} {va}, {b['depth']} {vb}" if same_data else
                          f"data: {_dataset_name(a)} {va}, {_dataset_name(b)} {vb}") + part)
        out.append(dict(claim=claim, moved=moved, verdicts={
            label: (v[claim]['verdict'] + (' (provisional)' if v[claim]['provisional'] else '')) if claim in v else ''
            for label, v in zip(labels, verdicts)}))
    return out


def comparison_table(parts: Sequence[Dict[str, Any]]) -> List[str]:
    """`verdict_changes` as markdown lines: a column per study, then what moved the verdicts."""
    changes = verdict_changes(parts)
    labels = [_study_label(r) for r in parts]
    lines = ['| claim (paper) | ' + ' | '.join(labels) + ' | moved by |', '|---|' + '---|' * (len(labels) + 1)]
    for c in changes:
        lines.append(f"| {c['claim']} | " + ' | '.join(c['verdicts'][label] or '-' for label in labels) +
                     f" | {'; '.join(c['moved']) or 'nothing'} |")
    return lines


# --- markdown ------------------------------------------------------------------------------------------------
def _num(v: Optional[float], digits: int, none: str) -> str:
    return none if v is None else f'{v:.{digits}f}'


def _cell(s: Dict[str, Any], digits: int, none: str = 'diverged') -> str:
    """'median (min-max)' over the seeds; `none` stands for a seed without the value."""
    if not s['values']:
        return '-'
    if s['min'] is None:
        return none
    return f"{_num(s['median'], digits, none)} ({_num(s['min'], digits, none)}-{_num(s['max'], digits, none)})"


def _finished(row: Dict[str, Any], results: Dict[str, Any]) -> bool:
    """Whether every seed of a `collect_study` row has finished."""
    return row['seeds_finished'] == row['seeds_planned']


def results_table(results: Dict[str, Any], link: str = '') -> List[str]:
    """The measured table with the paper's numbers side by side (markdown lines).

    Args:
        results: `collect_study` output.
        link: Prefix of the links to the run directories (e.g. 'reproduction/runs/'); empty for no links.
    """
    test = results.get('verdict_split') == 'test'  # the headline column, where the dataset has a test split
    lines = [f"| row | model | seeds trained | {'test error % | ' if test else ''}val error % | final train loss | "
             f"epochs to {results['target_top1']:g}% | diverged at lr {results['base_lr']:g} | lr used | "
             "paper C10 / C100 error % (ResNet-110) |",
             '|---|---|---:|' + ('---:|' if test else '') + '---:|---:|---:|---:|---|---:|']
    for r in results['rows']:
        n = r['seeds_planned']
        name = f"[`{r['model']}`]({link}{r['model']}/)" if link else f"`{r['model']}`"
        label = r['label'] + (' (extension)' if r['extension'] else '')
        unfinished = '' if _finished(r, results) else f" ({r['seeds_finished']}/{n} seeds finished)"
        paper = ' / '.join(f'{e:.2f}' for e in r['paper_errors']) if r['paper_errors'] else '-'
        lines.append(
            f"| {label}{unfinished} | {name} | {r['seeds_trained']}/{n} | "
            + (f"{_cell(r['test_error'], 2)} | " if test else '') + f"{_cell(r['val_error'], 2)} | "
            f"{_cell(r['train_loss'], 4)} | "
            f"{_cell(r['epochs_to_target'], 0, 'never')} | {r['diverged_at_base_lr']}/{n} | "
            f"{', '.join(lr_name(x) for x in r['lrs']) or '-'} | {paper} |")
    return lines


def claims_table(results: Dict[str, Any]) -> List[str]:
    marks = {'B': 'better', 'b': 'better (seeds overlap)', '=': 'tie', 'a': 'worse (seeds overlap)', 'A': 'worse',
             '?': 'no data'}
    measures = metrics(results)
    lines = ['| claim (paper) | expected worse -> better | ' + ' | '.join(m[1] for m in measures) +
             f" | diverged at lr {results['base_lr']:g} | verdict |",
             '|---|---|' + '---|' * len(measures) + '---|---|']
    for c in claim_verdicts(results):
        provisional = ' (provisional: seeds unfinished)' if c['provisional'] else ''
        for i, comp in enumerate(c['comparisons']):
            claim = (c['claim'] if i == 0 else '')
            verdict = f"**{c['verdict']}**{provisional}" if i == 0 else ''
            lines.append(f"| {claim} | `{comp['worse']}` -> `{comp['better']}` | " +
                         ' | '.join(marks[comp['marks'][k]] for k, _, _ in measures) +
                         f" | {comp['diverged'][0]} -> {comp['diverged'][1]} | {verdict} |")
    return lines


def all_rows(results: Dict[str, Any]) -> List[Dict[str, Any]]:
    """The rows of both depths of `collect_all` output: ResNet-56, then ResNet-110."""
    return results['rows'] + results.get('deep', {}).get('rows', [])


def table1_lines(activations: List[Dict[str, Any]], results: Dict[str, Any]) -> List[str]:
    """Shang et al. Table 1 (features after the last activation) of the trained best seeds, with the paper's."""
    paper = {(p.norm, p.act): p for p in TABLE1}
    feats = {r['model']: r for r in activations if r['tensor'] == 'features'}
    lines = ['| row | model | mean +- std | NZR | paper mean +- std | paper NZR |', '|---|---|---:|---:|---:|---:|']
    for r in all_rows(results):
        f = feats.get(r['model'])
        if f is None:
            continue
        p = paper.get((r['norm'], r['act']))
        lines.append(f"| {r['label']} | `{r['model']}` | {float(f['mean']):.2f} +- {float(f['std']):.2f} | "
                     f"{float(f['nzr']):.2f} | " + (f'{p.mean:.2f} +- {p.std:.2f} | {p.nzr:.2f} |' if p else '- | - |'))
    return lines


def delta_lines(deltas: List[Dict[str, Any]], results: Dict[str, Any]) -> List[str]:
    """Residual differences (Shang et al. Fig. 2) of the trained best seeds, summarized by halves of the net."""
    lines = ['| row | model | median Delta, first third of blocks | median Delta, last third | max Delta | '
             'last / first |',
             '|---|---|---:|---:|---:|---:|']
    for r in all_rows(results):
        # A block whose output has another shape than its input has no Delta (a CReLU after the last addition).
        vals = [float(d['delta']) for d in sorted((d for d in deltas if d['model'] == r['model']),
                                                  key=lambda d: int(d['index'])) if d['delta'] != '']
        if not vals:
            continue
        third = len(vals) // 3
        lines.append(f"| {r['label']} | `{r['model']}` | {statistics.median(vals[:third]):.3g} | "
                     f"{statistics.median(vals[-third:]):.3g} | {max(vals):.3g} | {vals[-1] / vals[0]:.3g} |")
    return lines


def replace_blocks(text: str, blocks: Dict[str, List[str]], doc: Path, prefix: str = 'study') -> str:
    """`text` with the lines between each pair of markers `<!-- {prefix}:{name} -->` ... `<!-- /{prefix}:{name} -->`
    replaced by `blocks[name]`.

    Raises:
        ValueError: `text` lacks the markers of a block (the message names them and `doc`).
    """
    for name, lines in blocks.items():
        begin, end = f'<!-- {prefix}:{name} -->', f'<!-- /{prefix}:{name} -->'
        if begin not in text or end not in text:
            raise ValueError(f'{doc} has no {begin} ... {end} markers for the generated {name} table; '
                             f'add them where the table belongs')
        head, rest = text.split(begin, 1)
        text = head + begin + '\n' + '\n'.join(lines) + '\n' + end + rest.split(end, 1)[1]
    return text
