"""The reproduction studies (train/study.py, train.reproduction.study): their definitions and rows, the lr-halving
rule and the early stop at chance on real train.py runs, selection on validation and verdicts on test, the
claim rules, and that the committed docs are exactly what the committed run files give."""
import dataclasses
import json
import shutil
import time
from pathlib import Path

import pytest
import timm
import yaml

from script_helpers import REPO, call_main, load_script, run_script
from timm_nf.paper import TABLE2, deep_study_rows, study_rows
from train.reproduction.study import (
    CHANCE_LEVEL, CLAIMS, EXIT_NONFINITE_LOSS, GROUPS, MAX_HALVINGS, RESULTS_FILE, STUDIES, SeedResult, _compare,
    _row_summary, _spread, all_rows, claim_verdicts, classify_run, collect_all, collect_study, comparison_table,
    load_results, verdict_changes,
)

STUDY = REPO / 'train' / 'study.py'
DIGITS56 = STUDIES['digits56']
DIGITS20 = STUDIES['digits20']
BASE_LR = DIGITS56.base_lr


def _set_final_epoch(summary: Path, **values) -> str:
    """Rewrite the final epoch of a summary.csv, each named column (its header name) by a function of its value;
    returns the new text."""
    lines = summary.read_text().splitlines()
    header, cols = lines[0].split(','), lines[-1].split(',')
    for name, change in values.items():
        i = header.index(name)
        cols[i] = str(change(float(cols[i])))
    text = '\n'.join(lines[:-1] + [','.join(cols)]) + '\n'
    summary.write_text(text)
    return text


def test_rows_are_table2_then_the_extensions_on_registered_names():
    for depth in (20, 56, 110):
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


@pytest.mark.parametrize('name', sorted(STUDIES))
def test_recipe_uses_the_study_base_lr_at_the_paper_lr_per_image(name: str):
    study = STUDIES[name]
    recipe = yaml.safe_load((REPO / study.recipe).read_text())
    assert recipe['lr'] == study.base_lr and recipe['dataset'] == study.dataset
    assert recipe['lr'] / recipe['batch_size'] == pytest.approx(0.1 / 128)  # the paper's lr 0.1 at batch 128
    # the paper's x0.1 steps (epochs 80 and 121 of 164 in fb.resnet.torch; 50% / 75% for Fashion-MNIST)
    assert recipe['decay_milestones'] in ([round(80 * recipe['epochs'] / 164), round(121 * recipe['epochs'] / 164)],
                                          [recipe['epochs'] // 2, recipe['epochs'] * 3 // 4])
    assert recipe['val_split'] == 'validation'  # nothing is chosen on a test split
    if study.chance_stop_epochs is not None:  # a quarter of the schedule, before the first lr step
        assert study.chance_stop_epochs == round(recipe['epochs'] / 4) < recipe['decay_milestones'][0]


def test_resnet20_studies_are_the_same_grid_on_two_datasets():
    """Issue 18: the Table 2 rows plus the NF pair at depth 20, 5 seeds for the four Table 1 rows and 3 for the
    rest; the digits at 20 as well, so that depth and data can be told apart."""
    digits, fashion = STUDIES['digits20'], STUDIES['fashion_mnist20']
    assert digits.rows == fashion.rows
    assert [r.paper for r in fashion.rows[:len(TABLE2)]] == list(TABLE2)
    assert [(r.norm, r.act) for r in fashion.rows[len(TABLE2):]] == [('NF (scaled WS)', 'ReLU'),
                                                                     ('NF (scaled WS)', 'CReLU')]
    seeds = {(r.norm, r.act): len(fashion.seeds_of(r)) for r in fashion.rows}
    assert sorted(seeds.values()) == [3] * 8 + [5] * 4
    assert {k for k, n in seeds.items() if n == 5} == {('Plain', 'ReLU'), ('Plain', 'CReLU'), ('BatchNorm', 'ReLU'),
                                                        ('BatchNorm', 'CReLU')}
    assert (fashion.verdict_split, fashion.eval_images, fashion.tag) == ('test', 10000, 'fashion_mnist')
    assert (digits.verdict_split, digits.eval_images) == ('validation', 360)  # the digits have no test split


def test_runs_are_classified_by_the_divergence_rule():
    assert classify_run(EXIT_NONFINITE_LOSS, [])[0] == 'diverged'
    assert classify_run(0, [{'train_loss': 9.0}, {'train_loss': 2.3025}]) == (
        'diverged', 'final training loss 2.3025 at chance level (ln 10 = 2.3026)')  # uniform output, measured
    assert classify_run(0, [{'train_loss': 2.0}, {'train_loss': 0.05}]) == ('trained', '')
    with pytest.raises(ValueError, match='status 1'):  # bad input / a crash is not a study result
        classify_run(1, [])
    # The early stop at chance (ResNet-20 studies): a run stopped by SIGTERM after its 3rd epoch at chance ...
    at_chance = [{'train_loss': 2.5, 'eval_top1': 10.0}, {'train_loss': 2.31, 'eval_top1': 11.0},
                 {'train_loss': 2.30, 'eval_top1': 10.0}]
    status, reason = classify_run(-15, at_chance, chance_stop_epochs=3)
    assert status == 'diverged' and 'still at chance level' in reason and 'after 3 epochs' in reason
    # ... one that left chance by then trains on, and a signal without the rule is a crash, not a result
    learning = at_chance[:2] + [{'train_loss': 0.1, 'eval_top1': 80.0}]
    assert classify_run(0, learning, chance_stop_epochs=3) == ('trained', '')
    assert classify_run(0, at_chance[:2], chance_stop_epochs=3)[0] == 'diverged'  # final loss at chance
    with pytest.raises(ValueError, match='status -15'):
        classify_run(-15, learning, chance_stop_epochs=3)
    assert classify_run(0, at_chance + [{'train_loss': 0.1, 'eval_top1': 80.0}], chance_stop_epochs=None) == (
        'trained', '')
    # A loss near chance while validation top-1 has left it is a slow start, not chance (measured: plain CReLU
    # ResNet-20, Fashion-MNIST, lr 0.025: loss 2.25 and 34% after 3 epochs): the run goes on.
    slow = at_chance[:2] + [{'train_loss': 2.25, 'eval_top1': 34.2}]
    with pytest.raises(ValueError, match='status -15'):
        classify_run(-15, slow, chance_stop_epochs=3)
    assert at_chance[1]['train_loss'] >= CHANCE_LEVEL > 2.1


def _row(norm, act, **metrics):
    base = dict(model=f'{norm}-{act}', norm=norm, act=act, diverged_at_base_lr=0, seeds_planned=3, seeds_finished=3)
    return dict(base, **{k: _spread(v) for k, v in metrics.items()})


def _results(worse, better):
    rows = []
    for claim_pairs in [p for _, _, pairs in CLAIMS for p in pairs]:
        for norm, act in claim_pairs:
            if not any(r['norm'] == norm and r['act'] == act for r in rows):
                rows.append(_row(norm, act, **(better if norm.startswith('BatchNorm') and act == 'CReLU' else worse)))
    return dict(rows=rows, target_top1=95.0, eval_images=360, verdict_split='validation')


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
    verdicts = {c['claim']: c for c in claim_verdicts(dict(rows=rows, target_top1=95.0, eval_images=360))}
    assert sorted(verdicts) == ['BatchNorm is best (CReLU)', 'BatchNorm is best (ReLU)',
                                'CReLU helps with normalization', 'CReLU helps without normalization']
    assert [(c['worse'], c['better']) for c in verdicts['CReLU helps without normalization']['comparisons']] == [
        ('Plain-ReLU', 'Plain-CReLU')]


def test_diverging_runs_halve_the_lr_are_recorded_and_not_rerun(tmp_path: Path, capsys):
    """Real train.py runs: the plain ReLU ResNet-56 (no normalization) under MSR init cannot train in two steps
    from its exploding init, so each lr counts as diverged (NaN loss, or loss above chance) and the next run halves
    it."""
    runs = tmp_path / 'runs'
    args = ['run', '--runs', str(runs), '--models', 'crelu_resnet56_relu_plain', '--seeds', '0', '--workers', '1',
            '--max-halvings', '1', '--', '--epochs', '1', '--train-num-samples', '64', '--val-num-samples', '32',
            '--model-kwargs', 'weight_init=msr']
    proc = call_main(STUDY, args, capsys)  # its train.py runs are real processes
    assert proc.returncode == 0, proc.stdout + proc.stderr
    dirs = sorted(p.name for p in (runs / 'crelu_resnet56_relu_plain').iterdir())
    assert dirs == [f'seed0-lr{BASE_LR / 2:g}', f'seed0-lr{BASE_LR:g}']
    for lr in (BASE_LR, BASE_LR / 2):
        outcome = json.loads((runs / 'crelu_resnet56_relu_plain' / f'seed0-lr{lr:g}' / 'study.json').read_text())
        assert outcome['status'] == 'diverged' and outcome['lr'] == lr and outcome['exit_status'] in (0, 3)
        args_yaml = yaml.safe_load((runs / 'crelu_resnet56_relu_plain' / f'seed0-lr{lr:g}' / 'args.yaml').read_text())
        assert args_yaml['lr'] == lr and args_yaml['batch_size'] == 32 and args_yaml['seed'] == 0

    again = call_main(STUDY, args, capsys)  # finished runs are skipped, not retrained
    assert again.returncode == 0
    for d in dirs:
        assert (runs / 'crelu_resnet56_relu_plain' / d / 'console.log').read_text().count('$ ') == 1

    seed = collect_study(runs, DIGITS56)['rows'][0]['seeds'][0]
    assert seed['lrs_diverged'] == [BASE_LR, BASE_LR / 2] and seed['lr'] is None


def test_committed_docs_are_what_the_committed_runs_give(capsys):
    proc = call_main(STUDY, ['report', '--check'], capsys)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = load_results()
    # every seed of every row, at all three depths
    assert results['complete'] and results['deep']['complete'] and results['depth20']['complete']
    assert results == collect_all(RESULTS_FILE.parent / 'runs')


def test_committed_fashion_mnist_docs_are_what_its_committed_runs_give(capsys):
    """The Fashion-MNIST grid runs over several sessions: whatever part of it is committed, its aggregate and tables
    are exactly what its committed run files give (a row with unfinished seeds says so in the table)."""
    data = GROUPS['fashion_mnist'].data
    assert (data / 'results.json').is_file() and (data / 'cost.json').is_file()
    proc = call_main(STUDY, ['report', '--check', '--study', 'fashion_mnist'], capsys)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert load_results(data / 'results.json') == collect_all(data / 'runs', GROUPS['fashion_mnist'])


def test_report_check_catches_an_edited_run(tmp_path: Path, capsys):
    data = tmp_path / 'reproduction'
    shutil.copytree(RESULTS_FILE.parent, data)
    doc = tmp_path / 'REPRODUCTION.md'
    shutil.copyfile(REPO / 'docs' / 'REPRODUCTION.md', doc)
    check = ['report', '--check', '--data', str(data), '--doc', str(doc)]
    assert call_main(STUDY, check, capsys).returncode == 0  # the copy, as committed, is current
    summary = next(data.glob('runs/crelu_resnet56/seed*/summary.csv'))
    _set_final_epoch(summary, train_loss=lambda v: v * 2)
    proc = call_main(STUDY, check, capsys)
    assert proc.returncode == 1
    assert 'out of date' in proc.stderr and 'train/study.py report' in proc.stderr


def test_every_row_that_trained_is_published_under_its_name():
    """A row's best seed is a pretrained tag `<model>.digits` exactly when every seed of the row has finished and
    one trained."""
    from timm_nf.pretrained import find_published
    for row in all_rows(load_results()):
        entry = find_published(row['model'], 'digits')
        finished = row['seeds_finished'] == row['seeds_planned']
        assert (entry is not None) == (finished and row['best_seed'] is not None), row['model']
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
    _set_final_epoch(other, train_loss=lambda v: 0.0, eval_top1=lambda v: 100.0)  # this seed is now the best
    before = {p.name: p.stat().st_mtime_ns for p in published.iterdir()}
    publish = ['publish', '--runs', str(tmp_path / 'no-runs'), '--data', str(data), '--models', 'crelu_resnet56']

    # results.json, which the card quotes, no longer matches the record: `report` first
    proc = run_script(STUDY, publish, cwd=tmp_path)
    assert proc.returncode != 0 and 'results.json is out of date' in proc.stderr and 'report' in proc.stderr
    (data / 'results.json').write_text(json.dumps(collect_all(data / 'runs'), indent=1) + '\n')

    proc = run_script(STUDY, publish, cwd=tmp_path)
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('error: crelu_resnet56: neither'), proc.stderr
    assert f'seed {other.parent.name[4]}' in lines[0] and 'rerun that seed' in lines[0]
    assert {p.name: p.stat().st_mtime_ns for p in published.iterdir()} == before


def test_selection_uses_validation_and_verdicts_use_test():
    """Fashion-MNIST: a row's best seed is the lowest *validation* error even when another seed has the lower test
    error, and the claims compare the rows' test errors."""
    study = STUDIES['fashion_mnist20']
    row = next(r for r in study.rows if (r.norm, r.act) == ('BatchNorm', 'CReLU'))

    def seed(s: int, val: float, test: float) -> SeedResult:
        return SeedResult(s, lr=study.base_lr, val_error=val, test_error=test, train_loss=0.2, epochs_to_target=3)

    summary = _row_summary(row, [seed(0, 8.0, 7.0), seed(1, 7.5, 9.0), seed(2, 9.0, 8.0)], study)
    assert summary['best_seed']['seed'] == 1  # lowest validation error; seed 0 has the lowest test error
    assert summary['test_error']['median'] == 8.0 and summary['val_error']['median'] == 8.0

    results = collect_study(Path('no-runs'), study)  # every row unfinished: the shape of a real aggregate
    assert not results['complete'] and results['verdict_split'] == 'test'
    by_key = {(r['norm'], r['act']): r for r in results['rows']}
    for key, test, val in ((('BatchNorm', 'ReLU'), [9.0, 9.1, 9.2], [5.0] * 3),
                           (('BatchNorm', 'CReLU'), [8.0, 8.1, 8.2], [6.0] * 3)):
        by_key[key].update(test_error=_spread(test), val_error=_spread(val), train_loss=_spread([0.2] * 3),
                           epochs_to_target=_spread([3] * 3))
    claim = next(c for c in claim_verdicts(dict(results, rows=list(by_key.values())))
                 if c['claim'] == 'CReLU helps with normalization')
    comparison = next(c for c in claim['comparisons'] if c['better'] == by_key['BatchNorm', 'CReLU']['model'])
    # CReLU is better on test (no overlap) and worse on validation: the verdict follows test
    assert comparison['marks'] == {'train_loss': '=', 'epochs_to_target': '=', 'test_error': 'B'}


def _finished_study(name: str, errors: dict) -> dict:
    """`collect_study` output of a study with every seed finished: each row's seeds (3 of them) at error
    e + [0, 0.1, 0.2] on both splits with e = `errors.get((norm, act), 5.0)`, a final training loss of e / 25 and
    e epochs to the target."""
    results = collect_study(Path('no-runs'), STUDIES[name])
    for r in results['rows']:
        e = errors.get((r['norm'], r['act']), 5.0)
        r.update(test_error=_spread([e, e + 0.1, e + 0.2]), val_error=_spread([e, e + 0.1, e + 0.2]),
                 train_loss=_spread([e / 25] * 3), epochs_to_target=_spread([e] * 3),
                 seeds_finished=r['seeds_planned'])
    return results


def test_verdict_changes_name_depth_or_data_on_the_pairs_both_studies_train():
    """A verdict that differs between two grids of the same data is moved by depth, between two grids of the same
    depth by data; ResNet-110's four rows are compared on the pairs it shares; nothing moves while seeds are
    unfinished."""
    crelu_wins = {('Plain', 'CReLU'): 3.0, ('Plain (no bias)', 'CReLU'): 3.0}  # held: CReLU 2 points lower
    digits56 = _finished_study('digits56', crelu_wins)
    digits110 = _finished_study('digits110', {('Plain', 'CReLU'): 3.0})
    digits20 = _finished_study('digits20', {})  # every row at 5.0: not separated
    fashion20 = _finished_study('fashion_mnist20', {('Plain', 'ReLU'): 9.0, ('Plain (no bias)', 'ReLU'): 9.0})
    claim = 'CReLU helps without normalization'
    changes = {c['claim']: c for c in verdict_changes([digits56, digits110, digits20, fashion20])}
    assert changes[claim]['verdicts'] == {'digits, ResNet-56': 'held', 'digits, ResNet-110': 'held',
                                          'digits, ResNet-20': 'not separated',
                                          'Fashion-MNIST, ResNet-20': 'held'}
    assert changes[claim]['moved'] == [
        'depth: 56 held, 20 not separated', 'depth: 110 held, 20 not separated (on the 1 pair both train)',
        'data: digits not separated, Fashion-MNIST held']
    # the digits at 56 and Fashion-MNIST at 20 differ in both: never compared; ResNet-110 has no NormProp rows
    assert changes['NormProp2 beats NormProp']['verdicts']['digits, ResNet-110'] == ''
    assert changes['CReLU helps with normalization']['moved'] == []  # its rows are at 5.0 in every study
    # plain CReLU ahead of BatchNorm CReLU at 56 and 110, level at 20
    assert changes['BatchNorm is best (CReLU)']['moved'] == [
        'depth: 56 failed, 20 not separated', 'depth: 110 failed, 20 not separated (on the 1 pair both train)']

    unfinished = dict(fashion20, rows=[dict(r, seeds_finished=0) if (r['norm'], r['act']) == ('Plain', 'CReLU')
                                       else r for r in fashion20['rows']])
    change = next(c for c in verdict_changes([digits20, unfinished]) if c['claim'] == claim)
    assert change['verdicts']['Fashion-MNIST, ResNet-20'] == 'held (provisional)' and change['moved'] == []
    lines = comparison_table([digits20, unfinished])
    assert lines[0] == '| claim (paper) | digits, ResNet-20 | Fashion-MNIST, ResNet-20 | moved by |'
    assert f'| {claim} | not separated | held (provisional) | nothing |' in lines


def test_a_run_still_at_chance_is_stopped_early(tmp_path: Path, capsys):
    """A real train.py run that cannot learn (lr 1e-12 after the study's own --lr; train.py reads 0 as "derive
    from --lr-base", as timm's does) is stopped by the study once its summary shows the training loss at chance
    after the ResNet-20 digits study's 8 epochs (of 400 asked), and recorded as diverged with the reason."""
    runs = tmp_path / 'runs'
    model = 'crelu_resnet20_relu'
    args = ['run', '--depth', '20', '--runs', str(runs), '--models', model, '--seeds', '0', '--workers', '1',
            '--max-halvings', '0', '--', '--epochs', '400', '--train-num-samples', '32', '--val-num-samples', '32',
            '--lr', '1e-12']
    began = time.monotonic()
    proc = call_main(STUDY, args, capsys)  # its train.py run is a real process, stopped by a real signal
    wall = time.monotonic() - began
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run = runs / model / f'seed0-lr{BASE_LR:g}'
    outcome = json.loads((run / 'study.json').read_text())
    assert outcome['status'] == 'diverged' and 'still at chance level' in outcome['reason'], outcome
    assert 8 <= outcome['epochs'] < 400 and outcome['exit_status'] < 0  # stopped by a signal, well before the end
    assert not (run / 'test.json').exists()  # the digits have no test split (and this run did not train)

    # Under a rule that no longer stops it (here: none), the stopped run goes on from its last checkpoint to the end
    # of the schedule it is given, and is judged by the rest of the rule.
    study = load_script(STUDY)
    rule_off = dataclasses.replace(STUDIES['digits20'], chance_stop_epochs=None)
    end = outcome['epochs'] + 2
    extra = ['--epochs', str(end), '--train-num-samples', '32', '--val-num-samples', '32', '--lr', '1e-12']
    began = time.monotonic()
    again = study.run_one(rule_off, model, 0, BASE_LR, runs, None, 1, extra)
    wall += time.monotonic() - began
    assert again['exit_status'] == 0 and again['epochs'] == end, again
    assert again['status'] == 'diverged' and again['reason'].startswith('final training loss'), again
    assert (run / 'console.log').read_text().count('$ ') == 2  # one start, one continuation

    # `spent` counts both sessions of the run from its train.log, within the time the two calls took
    seconds, sessions = study.train_seconds(run / 'train.log')
    assert sessions == 2 and 0 < seconds < wall
    data = tmp_path / 'data'
    proc = call_main(STUDY, ['spent', '--depth', '20', '--runs', str(runs), '--data', str(data)], capsys)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    spent = json.loads((data / 'spent20.json').read_text())
    row = next(r for r in spent['rows'] if r['model'] == model)
    assert (row['runs'], row['sessions'], row['epochs'], row['diverged'], row['trained']) == (1, 2, end, 1, 0)
    assert row['core_hours'] == round(seconds / 3600, 3) and spent['core_hours'] == round(seconds / 3600, 2)
    assert all(r['runs'] == 0 for r in spent['rows'] if r['model'] != model)
    assert f'| `{model}` | 1 | 0 | 1 | 0 | {end} |' in (data / 'spent20.md').read_text()
    # the committed copy (`report`'s) keeps the time without the log, which names the machine's folders
    committed = tmp_path / 'committed'
    assert study.copy_small_files(runs, committed) == 1 and not (committed / model / run.name / 'train.log').exists()
    proc = call_main(STUDY, ['spent', '--depth', '20', '--runs', str(committed), '--data', str(data / 'c')], capsys)
    assert proc.returncode == 0 and json.loads((data / 'c' / 'spent20.json').read_text())['rows'] == spent['rows']
    # a run with neither: a clear error, not zero hours
    (committed / model / run.name / study.TRAIN_TIME).unlink()
    proc = call_main(STUDY, ['spent', '--depth', '20', '--runs', str(committed), '--data', str(data / 'e')], capsys)
    assert proc.returncode == 1 and 'neither train.log nor train_time.json in' in proc.stderr
    assert not (data / 'e').exists()


def test_restore_reruns_a_lost_best_seed_and_keeps_it_only_if_it_repeats_the_record(tmp_path: Path, capsys):
    """A new machine has a grid's committed copy but not its weights: `restore` trains the best seed again (a real
    train.py) and keeps the weights only when the rerun repeats the committed summary.csv; the restored weights are
    the original run's, bit for bit."""
    import torch
    model = 'crelu_resnet20_relu'
    hparams = REPO / 'hub' / 'published' / f'{model}.digits' / 'train_hparams.yaml'
    seed = (yaml.safe_load(hparams.read_text())['seed'] + 1) % 5 if hparams.exists() else 1  # weights nowhere else
    runs, data = tmp_path / 'runs', tmp_path / 'data'
    tiny = ['--', '--epochs', '4', '--train-num-samples', '128', '--val-num-samples', '32']
    proc = call_main(STUDY, ['run', '--depth', '20', '--runs', str(runs), '--models', model, '--seeds', str(seed),
                             '--workers', '1', '--max-halvings', '0', *tiny], capsys)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run = runs / model / f'seed{seed}-lr{BASE_LR:g}'
    original = torch.load(run / 'last.pth.tar', map_location='cpu', weights_only=True)['state_dict']
    study = load_script(STUDY)
    assert study.copy_small_files(runs, data / 'runs') == 1
    # The row's other seeds, in the record, diverged at every lr: the row is finished and `seed` is its best.
    others = [s for s in DIGITS20.seeds_of(next(r for r in DIGITS20.rows if r.model == model)) if s != seed]
    for other in others:
        for k in range(MAX_HALVINGS + 1):
            lr = BASE_LR / 2 ** k
            folder = data / 'runs' / model / f'seed{other}-lr{lr:g}'
            folder.mkdir(parents=True)
            (folder / 'study.json').write_text(json.dumps(dict(
                model=model, seed=other, lr=lr, exit_status=3, epochs=0, status='diverged', reason='non-finite')))
            (folder / 'train_time.json').write_text(json.dumps(dict(seconds=1.0, sessions=1)))
    shutil.rmtree(runs)  # the new machine
    restore = ['restore', '--runs', str(runs), '--data', str(data), '--models', model]

    summary = data / 'runs' / model / run.name / 'summary.csv'
    record = summary.read_text()
    edited = _set_final_epoch(summary, eval_top1=lambda v: v + 1.0)  # the record's final top-1, one point off
    proc = call_main(STUDY, restore + tiny, capsys)
    assert proc.returncode == 1 and 'does not repeat the committed run (epoch 4 eval_top1' in proc.stderr, proc.stderr
    assert not run.exists()  # nothing restored

    summary.write_text(record)
    proc = call_main(STUDY, restore + tiny, capsys)  # the rerun kept in .restore, checked again against the record
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f'{model}: seed {seed} restored' in proc.stdout and f'trained at lr {BASE_LR:g}' in proc.stdout
    restored = torch.load(run / 'last.pth.tar', map_location='cpu', weights_only=True)['state_dict']
    assert restored.keys() == original.keys() and all(torch.equal(restored[k], original[k]) for k in original)
    assert not (runs / '.restore' / model / run.name).exists()
    # the run's folder now reads as finished: `run` skips it, `restore` finds the weights
    assert (run / 'study.json').read_text() == (data / 'runs' / model / run.name / 'study.json').read_text()
    proc = call_main(STUDY, restore + tiny, capsys)
    assert proc.returncode == 0 and f'{model}: seed {seed} has its weights' in proc.stdout

    # Another machine's CPU trains another trajectory from the same seed (here: the record edited): with --supersede
    # the rerun replaces the seed's record, and the record it replaced is kept under superseded/.
    shutil.rmtree(runs)
    summary.write_text(edited)
    proc = call_main(STUDY, restore + ['--supersede'] + tiny, capsys)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f'{model}: seed {seed} superseded' in proc.stdout and 'replaced the record' in proc.stdout
    assert (data / 'runs' / model / 'superseded' / run.name / 'summary.csv').read_text() == edited
    assert summary.read_text() == record  # the rerun's own record (this machine: the original run's)
    assert (run / 'last.pth.tar').is_file() and (run / 'train.log').is_file()
    # `spent` counts the superseded run beside its replacement
    proc = call_main(STUDY, ['spent', '--depth', '20', '--runs', str(data / 'runs'), '--data', str(tmp_path)], capsys)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    spent = json.loads((tmp_path / 'spent20.json').read_text())
    row = next(r for r in spent['rows'] if r['model'] == model)
    assert (row['runs'], row['trained'], row['diverged']) == (2 + len(others) * (MAX_HALVINGS + 1), 2,
                                                              len(others) * (MAX_HALVINGS + 1))
