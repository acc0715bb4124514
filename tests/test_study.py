"""The reproduction study (train/study.py, train.reproduction.study): its rows, its lr-halving rule on real train.py runs, the
claim rules, and that the committed docs are exactly what the committed run files give."""
import json
import shutil
from pathlib import Path

import pytest
import timm
import yaml

from script_helpers import REPO, run_script
from timm_nf.paper import TABLE2, deep_study_rows, study_rows
from train.reproduction.study import (
    BASE_LR, CLAIMS, EXIT_NONFINITE_LOSS, RESULTS_FILE, _compare, _spread, all_rows, claim_verdicts, classify_run,
    collect_all, collect_study, load_results,
)

STUDY = REPO / 'train' / 'study.py'


def test_rows_are_table2_then_the_extensions_on_registered_names():
    for depth in (56, 110):
        rows = study_rows(depth)
        assert [r.paper for r in rows[:len(TABLE2)]] == list(TABLE2)
        assert [r.extension for r in rows] == [False] * len(TABLE2) + [True] * 4
        for r in rows:
            assert timm.is_model(r.model) and f'{depth}' in r.model
            if r.paper is not None:  # same architecture as the paper's row, at another depth
                ours = timm.create_model(r.model, device='meta')
                theirs = timm.create_model(r.paper.model, device='meta', depth=depth)
                assert [(n, p.shape) for n, p in ours.named_parameters()] == \
                       [(n, p.shape) for n, p in theirs.named_parameters()]
    assert len({r.label for r in study_rows()}) == len(study_rows())
    deep = deep_study_rows()
    assert [(r.norm, r.act) for r in deep] == [('Plain', 'ReLU'), ('BatchNorm', 'ReLU'), ('Plain', 'CReLU'),
                                               ('BatchNorm', 'CReLU')]
    assert all(r.paper.model == r.model for r in deep)  # the paper's own ResNet-110 rows


def test_recipe_uses_the_study_base_lr_at_the_paper_lr_per_image():
    recipe = yaml.safe_load((REPO / 'train' / 'recipes' / 'study_digits.yaml').read_text())
    assert recipe['lr'] == BASE_LR
    assert recipe['lr'] / recipe['batch_size'] == pytest.approx(0.1 / 128)  # the paper's lr 0.1 at batch 128
    assert recipe['decay_milestones'] == [round(80 * recipe['epochs'] / 164), round(121 * recipe['epochs'] / 164)]


def test_runs_are_classified_by_the_divergence_rule():
    assert classify_run(EXIT_NONFINITE_LOSS, [])[0] == 'diverged'
    assert classify_run(0, [{'train_loss': 9.0}, {'train_loss': 2.3025}]) == (
        'diverged', 'final training loss 2.3025 at chance level (ln 10 = 2.3026)')  # uniform output, measured
    assert classify_run(0, [{'train_loss': 2.0}, {'train_loss': 0.05}]) == ('trained', '')
    with pytest.raises(ValueError, match='status 1'):  # bad input / a crash is not a study result
        classify_run(1, [])


def _row(norm, act, **metrics):
    base = dict(model=f'{norm}-{act}', norm=norm, act=act, diverged_at_base_lr=0)
    return dict(base, **{k: _spread(v) for k, v in metrics.items()})


def _results(worse, better):
    rows = []
    for claim_pairs in [p for _, _, pairs in CLAIMS for p in pairs]:
        for norm, act in claim_pairs:
            if not any(r['norm'] == norm and r['act'] == act for r in rows):
                rows.append(_row(norm, act, **(better if norm.startswith('BatchNorm') and act == 'CReLU' else worse)))
    return dict(rows=rows)


def test_compare_marks_clear_overlapping_tied_and_never():
    assert _compare(_spread([0.5, 0.6, 0.7]), _spread([0.1, 0.2, 0.3]), 0.0) == 'B'  # no overlap
    assert _compare(_spread([0.5, 0.6, 0.7]), _spread([0.1, 0.2, 0.55]), 0.0) == 'b'  # lower median, overlap
    assert _compare(_spread([0.1, 0.2, 0.3]), _spread([0.5, 0.6, 0.7]), 0.0) == 'A'
    assert _compare(_spread([1.0, 1.1, 1.2]), _spread([1.0, 1.1, 1.2]), 0.0) == '='
    # val error: one validation image apart is a tie, two are not
    one, two = 100 / 360, 200 / 360
    assert _compare(_spread([1.0 + one] * 3), _spread([1.0] * 3), one) == '='
    assert _compare(_spread([1.0 + two] * 3), _spread([1.0] * 3), one) == 'B'
    # epochs to 95%: a seed that never got there sorts above every number
    assert _compare(_spread([None, None, 9]), _spread([4, 5, 6]), 0.0) == 'B'
    assert _compare(_spread([None, 4, 5]), _spread([4, 5, 6]), 0.0) == '='
    assert _compare(_spread([]), _spread([4, 5, 6]), 0.0) == '?'


def test_verdicts_follow_the_stated_rule():
    by_claim = {c['claim']: c for c in claim_verdicts(_results(
        worse=dict(train_loss=[0.5, 0.6, 0.7], epochs_to_target=[9, 10, 11], val_error=[3.0, 3.3, 3.6]),
        better=dict(train_loss=[0.1, 0.2, 0.3], epochs_to_target=[3, 4, 5], val_error=[1.0, 1.1, 1.2])))}
    assert by_claim['BatchNorm is best (CReLU)']['verdict'] == 'held'
    assert by_claim['CReLU beats doubling the width']['verdict'] == 'held'
    assert by_claim['NormProp2 beats NormProp']['verdict'] == 'not separated'  # identical rows: all ties
    flipped = {c['claim']: c for c in claim_verdicts(_results(
        better=dict(train_loss=[0.5, 0.6, 0.7], epochs_to_target=[9, 10, 11], val_error=[3.0, 3.3, 3.6]),
        worse=dict(train_loss=[0.1, 0.2, 0.3], epochs_to_target=[3, 4, 5], val_error=[1.0, 1.1, 1.2])))}
    assert flipped['BatchNorm is best (CReLU)']['verdict'] == 'failed'


def test_claims_of_the_paper_depth_use_the_rows_it_trains():
    """At ResNet-110 the study trains four rows: a claim is judged on the pairs among them, or not at all."""
    metrics = dict(train_loss=[0.1, 0.2, 0.3], epochs_to_target=[3, 4, 5], val_error=[1.0, 1.1, 1.2])
    rows = [_row(norm, act, **metrics) for norm, act in (('Plain', 'ReLU'), ('BatchNorm', 'ReLU'), ('Plain', 'CReLU'),
                                                          ('BatchNorm', 'CReLU'))]
    verdicts = {c['claim']: c for c in claim_verdicts(dict(rows=rows))}
    assert sorted(verdicts) == ['BatchNorm is best (CReLU)', 'BatchNorm is best (ReLU)',
                                'CReLU helps with normalization', 'CReLU helps without normalization']
    assert [(c['worse'], c['better']) for c in verdicts['CReLU helps without normalization']['comparisons']] == [
        ('Plain-ReLU', 'Plain-CReLU')]


def test_diverging_runs_halve_the_lr_are_recorded_and_not_rerun(tmp_path: Path):
    """Real train.py runs: the plain ReLU ResNet-56 (no normalization) under MSR init cannot train in two steps
    from its exploding init, so each lr counts as diverged (NaN loss, or loss above chance) and the next run halves
    it."""
    runs = tmp_path / 'runs'
    args = ['run', '--runs', str(runs), '--models', 'crelu_resnet56_relu_plain', '--seeds', '0', '--workers', '1',
            '--max-halvings', '1', '--', '--epochs', '1', '--train-num-samples', '64', '--val-num-samples', '32',
            '--model-kwargs', 'weight_init=msr']
    proc = run_script(STUDY, args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    dirs = sorted(p.name for p in (runs / 'crelu_resnet56_relu_plain').iterdir())
    assert dirs == [f'seed0-lr{BASE_LR / 2:g}', f'seed0-lr{BASE_LR:g}']
    for lr in (BASE_LR, BASE_LR / 2):
        outcome = json.loads((runs / 'crelu_resnet56_relu_plain' / f'seed0-lr{lr:g}' / 'study.json').read_text())
        assert outcome['status'] == 'diverged' and outcome['lr'] == lr and outcome['exit_status'] in (0, 3)
        args_yaml = yaml.safe_load((runs / 'crelu_resnet56_relu_plain' / f'seed0-lr{lr:g}' / 'args.yaml').read_text())
        assert args_yaml['lr'] == lr and args_yaml['batch_size'] == 32 and args_yaml['seed'] == 0

    again = run_script(STUDY, args, cwd=tmp_path)  # finished runs are skipped, not retrained
    assert again.returncode == 0
    for d in dirs:
        assert (runs / 'crelu_resnet56_relu_plain' / d / 'console.log').read_text().count('$ ') == 1

    seed = collect_study(runs)['rows'][0]['seeds'][0]
    assert seed['lrs_diverged'] == [BASE_LR, BASE_LR / 2] and seed['lr'] is None


def test_committed_docs_are_what_the_committed_runs_give():
    proc = run_script(STUDY, ['report', '--check'], cwd=REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = load_results()
    assert results['complete'] and results['deep']['complete']  # every seed of every row, at both depths
    assert results == collect_all(RESULTS_FILE.parent / 'runs')


def test_report_check_catches_an_edited_run(tmp_path: Path):
    data = tmp_path / 'reproduction'
    shutil.copytree(RESULTS_FILE.parent, data)
    doc = tmp_path / 'REPRODUCTION.md'
    shutil.copyfile(REPO / 'docs' / 'REPRODUCTION.md', doc)
    summary = next(data.glob('runs/crelu_resnet56/seed*/summary.csv'))
    lines = summary.read_text().splitlines()
    cols = lines[-1].split(',')
    cols[1] = str(float(cols[1]) * 2)  # the final training loss
    summary.write_text('\n'.join(lines[:-1] + [','.join(cols)]) + '\n')
    proc = run_script(STUDY, ['report', '--check', '--data', str(data), '--doc', str(doc)], cwd=tmp_path)
    assert proc.returncode == 1
    assert 'out of date' in proc.stderr and 'train/study.py report' in proc.stderr


def test_every_row_that_trained_is_published_under_its_name():
    """A row's best seed is a pretrained tag `<model>.digits` exactly when some seed of the row trained."""
    from timm_nf.pretrained import find_published
    for row in all_rows(load_results()):
        entry = find_published(row['model'], 'digits')
        assert (entry is not None) == (row['best_seed'] is not None), row['model']
        if entry is not None:
            hparams = yaml.safe_load((REPO / entry.published / 'train_hparams.yaml').read_text())
            assert (hparams['seed'], hparams['lr']) == (row['best_seed']['seed'], row['best_seed']['lr'])
            card = (REPO / entry.published / 'README.md').read_text()
            assert 'reproduction of Shang' in card and f"seed {row['best_seed']['seed']}, lr" in card


def test_publish_of_a_best_seed_with_no_weights_anywhere_is_a_one_line_error(tmp_path: Path):
    """A record whose best seed has neither a checkpoint under --runs nor a published copy (the published folder
    holds another seed) stops publish before validate.py runs, naming the row, the seed and the fix."""
    data = tmp_path / 'reproduction'
    shutil.copytree(RESULTS_FILE.parent, data)
    published = REPO / 'hub' / 'published' / 'crelu_resnet56.digits'
    seed = yaml.safe_load((published / 'train_hparams.yaml').read_text())['seed']
    other = next(p for p in sorted(data.glob('runs/crelu_resnet56/seed*/summary.csv'))
                 if not p.parent.name.startswith(f'seed{seed}-'))
    lines = other.read_text().splitlines()
    cols = lines[-1].split(',')
    cols[1], cols[3] = '0.0', '100.0'  # the final training loss and validation top-1: this seed is now the best
    other.write_text('\n'.join(lines[:-1] + [','.join(cols)]) + '\n')
    before = {p.name: p.stat().st_mtime_ns for p in published.iterdir()}

    proc = run_script(STUDY, ['publish', '--runs', str(tmp_path / 'no-runs'), '--data', str(data),
                              '--models', 'crelu_resnet56'], cwd=tmp_path)
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('error: crelu_resnet56: neither'), proc.stderr
    assert f'seed {other.parent.name[4]}' in lines[0] and 'rerun that seed' in lines[0]
    assert {p.name: p.stat().st_mtime_ns for p in published.iterdir()} == before
