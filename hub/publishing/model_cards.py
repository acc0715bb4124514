"""Generate MODEL_CARDS.md from timm's registry: every timm-nf model, its size, cost, paper row and
pretrained tags (their folders, metrics and Hub repos).

Usage: ``python hub/model_cards.py [--check] [--out MODEL_CARDS.md]``; `--check` exits 1 when the file is stale.
"""
import argparse
import re
import sys
from pathlib import Path
from typing import List, Sequence, Tuple

import timm

import timm_nf  # noqa: F401  (registers the models)
from timm_nf.paper import TABLE2, TABLE4, PaperRow, call_str
from timm_nf.pretrained import PUBLISHED
from timm_nf.profile import model_stats
from train.reproduction.study import claim_verdicts, load_results, results_table

from .card import paper_rows
from .results import REPO_ROOT, entry_results, study_seeds

FAMILIES = {
    'crelu_resnet': 'CReLU ResNets and their ReLU / plain baselines (Shang, Chiu & Sohn, AAAI 2017)',
    'normprop_resnet': 'NormProp ResNets (Shang, Chiu & Sohn, AAAI 2017)',
    'nf_resnet': 'NF-ResNets (Brock, De & Smith, ICLR 2021)',
    'nf_regnet': 'NF-RegNets with ReLU / CReLU (Brock, De & Smith, ICLR 2021)',
}


def our_models(family: str) -> List[str]:
    """Names registered by timm-nf's module for `family` (timm's own `nf_*` models excluded)."""
    return sorted(timm.list_models(module=family), key=lambda n: (int(re.search(r'\d+', n).group()), n))


def _first_doc_line(name: str) -> str:
    doc = timm.models.model_entrypoint(name).__doc__ or ''
    return doc.strip().splitlines()[0] if doc.strip() else ''


def _paper_row_cell(name: str) -> str:
    cells = []
    for label, row, _ in paper_rows(name):
        table = label.split(',')[1].split('(')[0].strip()  # 'Table 2'
        depth = '' if table == 'Table 2' else ', ResNet-' + re.search(r'\d+', row.model).group()
        cells.append(f'{table}: {row.norm} {row.act}{depth}')
    return '; '.join(cells)


def _tag_cell(name: str) -> str:
    # The committed folder: the Hub repos exist only once `hub/publish.py --all --push` has run.
    return ', '.join(f'[`{e.tag}`]({e.published})' for e in PUBLISHED if e.model == name)


def _pretrained_lines() -> List[str]:
    first = PUBLISHED[0]
    lines = [
        '## Pretrained tags',
        '',
        'Published weights, listed as data in `timm_nf/pretrained.py`. A tag is only published on a name that fully',
        'determines the architecture; keyword variants are published as `hf-hub:` repos.',
        '',
        '**Where the weights are.** Each tag\'s folder is committed with its weights in this repository,',
        '`hub/published/<model>.<tag>/`, and no upload to the Hugging Face Hub has been made yet: those folders are',
        'the only copy. Load one from the root of a clone (install: `pip install .` there, see the README):',
        f"`timm.create_model('local-dir:{first.published}', pretrained=True)`. `python hub/publish.py --all --push`",
        'uploads them to the Hub repos named below; from then on',
        f"`timm.create_model('{first.name}', pretrained=True)` (or `'hf-hub:{first.hub_id}'`) fetches them.",
        '',
        'Metrics come from the committed validation results file of each tag (`train/validate.py`), measured on the',
        'split named. The study\'s tags are the best of 3 seeds, chosen on that same split, so their numbers flatter',
        'them: "seed median" is the median over the seeds of the final top-1 on that split',
        '([docs/reproduction/results.json](docs/reproduction/results.json)); a single run has none.',
        '',
    ]
    if any(e.metrics_split == 'test' for e in PUBLISHED):
        lines += [
            'Tags measured on a test split (Fashion-MNIST\'s official 10,000 images) are the exception: their seed was',
            'chosen on the validation split, nothing on the test split, and their seed median is over the final test',
            'top-1 ([docs/reproduction/fashion_mnist/results.json](docs/reproduction/fashion_mnist/results.json)).',
            '',
        ]
    lines += [
        '| model | dataset (split) | images | top-1 | chosen on the split | seed median top-1 | top-5 | params (M) | '
        'GMACs | input | folder | Hub repo (after a push) | results | recipe |',
        '|---|---|---:|---:|---|---:|---:|---:|---:|---:|---|---|---|---|',
    ]
    for entry in PUBLISHED:
        row = entry_results(entry)
        s = model_stats(entry.model, img_size=entry.input_size[-1])
        seeds = study_seeds(entry)
        chosen = 'nothing (one run)' if seeds is None else f'seed, best of {len(seeds.top1)}' if seeds.split != 'test' \
            else f'nothing (seed: best of {len(seeds.top1)} on validation)'
        median = '-' if seeds is None else ('diverged' if seeds.median is None else f'{seeds.median:.2f}')
        lines.append(
            f"| `{entry.name}` | {entry.dataset} ({row.get('split', '')}) | {row.get('num_images', '')} | "
            f"{row['top1']:.2f} | {chosen} | {median} | {row['top5']:.2f} | {s.params / 1e6:.3f} | {s.gmacs:.3f} | "
            f'{entry.input_size[-1]} | [{Path(entry.published).name}]({entry.published}) | `{entry.hub_id}` | '
            f'[{Path(entry.results).name}]({entry.results}) | [{Path(entry.recipe).name}]({entry.recipe}) |')
    lines.append('')
    return lines


def _study_lines() -> List[str]:
    """The reproduction study's measured table, with the paper's numbers side by side (docs/REPRODUCTION.md)."""
    results = load_results()
    lines = [
        '## Reproduction study: Table 2 at small scale',
        '',
        f"Every Table 2 row (and four extensions) as a CIFAR-layout ResNet-{results['depth']}, trained with "
        f"`train/study.py` on the embedded digits, {len(results['seeds'])} seeds each; median (min-max) over the "
        'seeds. Validation error alone cannot order the rows (one image is 0.28%); see '
        '[docs/REPRODUCTION.md](docs/REPRODUCTION.md) for the training curves, the signal propagation and Table 1 '
        'statistics and the method. The paper\'s column is its CIFAR ResNet-110 test error.',
        '',
    ]
    lines += results_table(results, link='docs/reproduction/runs/')
    lines += ['', "The paper's qualitative claims at this scale:", '']
    lines += [f"- {c['claim']}: **{c['verdict']}**" for c in claim_verdicts(results)]
    lines.append('')
    return lines


def _paper_table(title: str, error_cols: Tuple[str, str], rows: Sequence[PaperRow], gmacs: bool) -> List[str]:
    """One of the paper's tables: its two error columns, the call that builds each row, and the row's size."""
    extra_head, extra_rule = (' GMACs |', '---:|') if gmacs else ('', '')
    lines = [f'### {title}', '',
             f'| norm | activation | {error_cols[0]} | {error_cols[1]} | call | params (M) |{extra_head}',
             f'|---|---|---:|---:|---|---:|{extra_rule}']
    for row in rows:
        s = model_stats(row.model, **dict(row.kwargs))
        lines.append(f'| {row.norm} | {row.act} | {row.errors[0]:.2f} | {row.errors[1]:.2f} | `{call_str(row)}` | '
                     f'{s.params / 1e6:.3f} |' + (f' {s.gmacs:.3f} |' if gmacs else ''))
    return lines


def render() -> str:
    lines = [
        '# Model cards',
        '',
        'Every model timm-nf registers with timm, generated from the registry by `python hub/model_cards.py`',
        '(a test fails when this file is out of date). Parameters and GMACs are counted for one image at the',
        "architecture's natural input size, its bare name's (CIFAR layout 32 px, ImageNet 224 px; torch's FLOP",
        "counter / 2); bare names carry no weights, and each pretrained tag lists its own input size and metrics.",
        '`import timm_nf` registers them all:',
        '',
        '```python',
        'import timm, timm_nf',
        "model = timm.create_model('crelu_resnet56')",
        '```',
        '',
        'Every factory takes the study\'s keyword arguments where they apply: `act_layer` (`relu`, `crelu`; NF also',
        '`silu`, `gelu`), `norm` (`batchnorm`, `none`, `normprop`), `normprop_version` (1, 2, 3), `conv_bias`,',
        '`width_mult` (0.75 gives 12-24-48 on CIFAR), `depth` (6n+2, CIFAR layout), and the choices the paper',
        'leaves open, whose defaults [docs/REPRODUCTION.md](docs/REPRODUCTION.md#design-choices-the-paper-leaves-open)',
        'decides by measurement: `weight_init`, `last_act`, `normprop_consts`, `zero_init_last`, `head_init_scale`.',
        'The "paper row" column names the table row whose architecture the name builds with its defaults;',
        '"pretrained" links the published tags\' folders (see [Pretrained tags](#pretrained-tags)).',
        '',
    ]
    for family, title in FAMILIES.items():
        lines += [f'## `{family}*`: {title}', '',
                  '| model | params (M) | GMACs | input | description | paper row | pretrained |',
                  '|---|---:|---:|---:|---|---|---|']
        for name in our_models(family):
            s = model_stats(name)
            lines.append(
                f'| `{name}` | {s.params / 1e6:.3f} | {s.gmacs:.3f} | {s.img_size} | {_first_doc_line(name)} | '
                f'{_paper_row_cell(name)} | {_tag_cell(name)} |')
        lines.append('')
    lines += _pretrained_lines()
    lines += _study_lines()
    lines += ['## Paper rows -> calls', '']
    lines += _paper_table('Shang et al. Table 2 (CIFAR test error %, ResNet-110)', ('CIFAR-10', 'CIFAR-100'), TABLE2,
                          gmacs=False)
    lines.append('')
    lines += _paper_table('Shang et al. Table 4 (ImageNet validation error %, single crop)', ('top-1', 'top-5'),
                          TABLE4, gmacs=True)
    lines += [
        '',
        'Table 3 (equal size): `crelu_resnet110(width_mult=0.75)` (12-24-48) against `crelu_resnet110_relu`.',
        'NormProp keeps BatchNorm on the identity path where the spatial size is reduced (the paper\'s footnote 2).',
        '',
    ]
    return '\n'.join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', default=str(REPO_ROOT / 'MODEL_CARDS.md'),
                        help="file to write (default: the repository's MODEL_CARDS.md)")
    parser.add_argument('--check', action='store_true', help='only compare; exit 1 if the file is out of date')
    args = parser.parse_args(argv)
    text = render()
    path = Path(args.out)
    if args.check:
        if not path.exists() or path.read_text() != text:
            print(f'{path} is out of date: run `python hub/model_cards.py --out {path}`', file=sys.stderr)
            return 1
        print(f'{path} is current')
        return 0
    tmp = path.with_name(path.name + '.tmp')
    tmp.write_text(text)
    tmp.replace(path)  # atomic: a reader never sees a half-written file
    print(f'wrote {path}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
