"""The model card (`README.md`) of a published model, in the layout of timm's own Hub cards.

YAML front matter (written by `huggingface_hub.ModelCardData`): `library_name: timm`, `tags`, `license`,
`datasets` (only a dataset id that exists on the Hub), `pipeline_tag` and this checkpoint's own validation metrics
as `model-index`. Then, for a reader who has only the card: how to install timm-nf and where the weights are
(with the call that loads them), what each number was measured on and whether anything was chosen on that split
(with the median over seeds where a seed was, and the command that measures it again where the numbers are on a
test split nothing was chosen on), model details, usage (classification, feature maps, embeddings),
a comparison with the paper's numbers for the same architecture where the papers report any, and citations of
the papers, the dataset and timm.

Every metric comes from the results row of the publication (`train/validate.py`), the seed median from the study's
aggregate; sizes and costs are measured on the model; nothing is typed in.
"""
from dataclasses import dataclass, fields
from functools import lru_cache
from typing import Any, Dict, List, Optional, Tuple

import torch
import yaml

import timm
from huggingface_hub import EvalResult, ModelCardData

from timm_nf.data import FASHION_MNIST_PACKAGE, FASHION_MNIST_VAL_SIZE
from timm_nf.models import ResidualNet
from timm_nf.paper import TABLE2, TABLE4, PaperRow, call_str
from timm_nf.profile import model_activations, model_stats

from .results import SeedSpread, study_seeds

__all__ = ['render_card', 'paper_rows', 'PAPERS', 'DATASETS', 'DatasetInfo', 'dataset_info']

PAPERS = {
    'shang2017': dict(
        title='Exploring Normalization in Deep Residual Networks with Concatenated Rectified Linear Units',
        venue='Shang, Chiu & Sohn, AAAI 2017',
        bibtex='@inproceedings{shang2017exploring,\n'
               '  title={Exploring Normalization in Deep Residual Networks with Concatenated Rectified Linear '
               'Units},\n'
               '  author={Shang, Wenling and Chiu, Justin and Sohn, Kihyuk},\n'
               '  booktitle={Proceedings of the AAAI Conference on Artificial Intelligence},\n'
               '  volume={31},\n'
               '  number={1},\n'
               '  year={2017}\n'
               '}'),
    'brock2021': dict(
        title='Characterizing signal propagation to close the performance gap in unnormalized ResNets',
        venue='Brock, De & Smith, ICLR 2021, https://arxiv.org/abs/2101.08692',
        bibtex='@inproceedings{brock2021characterizing,\n'
               '  title={Characterizing signal propagation to close the performance gap in unnormalized ResNets},\n'
               '  author={Brock, Andrew and De, Soham and Smith, Samuel L},\n'
               '  booktitle={International Conference on Learning Representations},\n'
               '  year={2021}\n'
               '}'),
}
TIMM_BIBTEX = ('@misc{rw2019timm,\n'
               '  author = {Ross Wightman},\n'
               '  title = {PyTorch Image Models},\n'
               '  year = {2019},\n'
               '  publisher = {GitHub},\n'
               '  journal = {GitHub repository},\n'
               '  doi = {10.5281/zenodo.4414861},\n'
               '  howpublished = {\\url{https://github.com/huggingface/pytorch-image-models}}\n'
               '}')


@dataclass(frozen=True)
class DatasetInfo:
    """What a card says about a dataset.

    Attributes:
        hub_id: Its id on the Hugging Face Hub, for the card's `datasets:` metadata; None when the Hub has no
            dataset that is this one (the metadata then leaves it out).
        description: What it is, for the card's text.
        bibtex: Its citation.
        extra: The pip extra of timm-nf that reads it ('' when none is needed).
        validation: What its validation split is, for the cards of weights measured on its test split ('' for a
            dataset without a test split).
        files: How to get the files `train/validate.py` reads, for the same cards' command that measures them
            again.
    """
    hub_id: Optional[str]
    description: str
    bibtex: str
    extra: str = ''
    validation: str = ''
    files: str = ''

    @property
    def name(self) -> str:
        """Its name: the description up to its first parenthesis."""
        return self.description.split(' (')[0]


# Dataset name as train/validate.py records it -> what the card says about it. Hub ids checked to exist on the
# Hub (2026-11); scikit-learn's digits, a copy of the UCI optdigits test set, has no dataset there.
DATASETS: Dict[str, DatasetInfo] = {
    'digits': DatasetInfo(
        None, "scikit-learn's 8x8 handwritten digits (UCI optdigits, 1,437 train / 360 validation images), "
              'upsampled to 32x32 RGB',
        '@misc{alpaydin1998optdigits,\n'
        '  author={Alpaydin, E. and Kaynak, C.},\n'
        '  title={Optical Recognition of Handwritten Digits},\n'
        '  howpublished={UCI Machine Learning Repository},\n'
        '  year={1998},\n'
        '  doi={10.24432/C50P49}\n'
        '}', extra='digits'),
    'fashion_mnist': DatasetInfo(
        'zalando-datasets/fashion_mnist', "Fashion-MNIST (Zalando's 28x28 grayscale article images, 10 classes)",
        '@article{xiao2017fashion,\n'
        '  title={Fashion-MNIST: a Novel Image Dataset for Benchmarking Machine Learning Algorithms},\n'
        '  author={Xiao, Han and Rasul, Kashif and Vollgraf, Roland},\n'
        '  journal={arXiv preprint arXiv:1708.07747},\n'
        '  year={2017}\n'
        '}',
        validation=f'{FASHION_MNIST_VAL_SIZE:,} official training images held out from training, stratified with '
                   'seed 0',
        files=f'Debian: `apt-get install {FASHION_MNIST_PACKAGE}`, or any folder of them with `--data-dir`'),
    'imagenet': DatasetInfo(
        'ILSVRC/imagenet-1k', 'ImageNet-1k',
        '@article{russakovsky2015imagenet,\n'
        '  title={ImageNet Large Scale Visual Recognition Challenge},\n'
        '  author={Russakovsky, Olga and Deng, Jia and Su, Hao and Krause, Jonathan and Satheesh, Sanjeev and '
        'Ma, Sean and Huang, Zhiheng and Karpathy, Andrej and Khosla, Aditya and Bernstein, Michael and Berg, '
        'Alexander C. and Fei-Fei, Li},\n'
        '  journal={International Journal of Computer Vision},\n'
        '  volume={115},\n'
        '  number={3},\n'
        '  pages={211--252},\n'
        '  year={2015}\n'
        '}'),
}
_CIFAR_BIBTEX = ('@techreport{krizhevsky2009learning,\n'
                 '  title={Learning Multiple Layers of Features from Tiny Images},\n'
                 '  author={Krizhevsky, Alex},\n'
                 '  institution={University of Toronto},\n'
                 '  year={2009}\n'
                 '}')
DATASETS['torch/cifar10'] = DatasetInfo('uoft-cs/cifar10', 'CIFAR-10', _CIFAR_BIBTEX)
DATASETS['torch/cifar100'] = DatasetInfo('uoft-cs/cifar100', 'CIFAR-100', _CIFAR_BIBTEX)


def dataset_info(dataset: str) -> DatasetInfo:
    """What a card says about `dataset` (a name as train/validate.py records it); unknown names are described by
    their name alone, without Hub id or citation."""
    return DATASETS.get(dataset) or DatasetInfo(None, dataset, '')


# Paper tables: (label, metric labels of `PaperRow.errors`).
_TABLES = (
    ('Shang et al. 2017, Table 2 (test error %, median of 5 runs)', TABLE2,
     ('CIFAR-10 top-1 err', 'CIFAR-100 top-1 err')),
    ('Shang et al. 2017, Table 4 (ImageNet val error %, single crop)', TABLE4,
     ('ImageNet top-1 err', 'ImageNet top-5 err')),
)
_NON_ARCH_ARGS = ('num_classes', 'in_chans', 'global_pool', 'drop_rate', 'drop_path_rate', 'drop_block_rate')


@lru_cache(maxsize=None)
def _arch_key(model: str, kwargs: Tuple[Tuple[str, Any], ...]) -> Any:
    net = timm.create_model(model, device='meta', **dict(kwargs))
    if isinstance(net, ResidualNet):
        return tuple((f.name, getattr(net.cfg, f.name)) for f in fields(net.cfg))
    return model, kwargs


def paper_rows(model: str, model_args: Optional[Dict[str, Any]] = None) -> List[Tuple[str, PaperRow, Tuple[str, ...]]]:
    """Paper table rows whose model is architecturally the same as `timm.create_model(model, **model_args)`.

    Returns:
        (table label, row, metric labels) triples.
    """
    args = tuple(sorted((k, v) for k, v in (model_args or {}).items() if k not in _NON_ARCH_ARGS))
    key = _arch_key(model, args)
    return [(label, row, metrics) for label, table, metrics in _TABLES for row in table
            if _arch_key(row.model, tuple(sorted(row.kwargs))) == key]


def _paper_keys(model_name: str) -> List[str]:
    return ['brock2021'] if model_name.startswith(('nf_resnet', 'nf_regnet')) else ['shang2017']


def _fmt(value: Any, digits: int = 2) -> str:
    return f'{float(value):.{digits}f}' if value not in (None, '') else '-'


def _front_matter(pub: Any, config: Dict[str, Any], dataset: str, info: DatasetInfo, dataset_desc: str) -> str:
    row = pub.results
    eval_results = None
    if row:
        # model-index requires a dataset type: the Hub id where there is one, else the name validate.py records.
        common = dict(task_type='image-classification', task_name='Image Classification',
                      dataset_type=info.hub_id or dataset, dataset_name=dataset_desc,
                      dataset_split=str(row.get('split') or 'validation'))
        eval_results = [EvalResult(metric_type='accuracy', metric_name='top-1 accuracy',
                                   metric_value=float(row['top1']), **common)]
        if row.get('top5') not in (None, ''):
            eval_results.append(EvalResult(metric_type='top_5_accuracy', metric_name='top-5 accuracy',
                                           metric_value=float(row['top5']), **common))
    family = next((m for m in ('crelu_resnet', 'normprop_resnet', 'nf_resnet', 'nf_regnet')
                   if pub.model_name.startswith(m)), None)
    tags = ['image-classification', 'timm', 'timm-nf'] + ([family] if family else [])
    data = ModelCardData(
        library_name='timm', license=config['pretrained_cfg'].get('license', 'apache-2.0'), tags=tags,
        datasets=[info.hub_id] if info.hub_id else None, pipeline_tag='image-classification',
        metrics=['accuracy'] if row else None, model_name=pub.name, eval_results=eval_results,
    )
    return '---\n' + data.to_yaml() + '\n---\n'


def _run_args(hparams_text: Optional[str]) -> Dict[str, Any]:
    """The run's args.yaml as a mapping (empty when it was not recorded or is not one)."""
    if not hparams_text:
        return {}
    try:
        args = yaml.safe_load(hparams_text)
    except yaml.YAMLError:
        return {}
    return args if isinstance(args, dict) else {}


def _run_summary(args: Dict[str, Any]) -> str:
    """'seed 1, lr 0.025, batch 32, 30 epochs' from the run's arguments (empty when they were not recorded)."""
    parts = [f'{label} {args[key]}' for key, label in (('seed', 'seed'), ('lr', 'lr'), ('batch_size', 'batch'))
             if args.get(key) is not None]
    if args.get('epochs') is not None:
        parts.append(f"{args['epochs']} epochs")
    return ', '.join(parts)


def _checkpoint_choice(pub: Any, run: Dict[str, Any]) -> Optional[str]:
    """Whether the published checkpoint was chosen on the split its metrics are measured on.

    Returns:
        '' when they are the run's final weights (nothing chosen), a phrase naming the choice when they are an
        earlier epoch's measured on the run's own validation split (train.py keeps `model_best` and
        `checkpoint-*` by that split's metric), None when the records cannot tell.
    """
    epochs, row = run.get('epochs'), pub.results or {}
    if pub.epoch is None or not isinstance(epochs, int):
        return None
    if pub.epoch + 1 >= epochs:
        return ''
    same_split = (row.get('dataset'), row.get('split')) == (run.get('dataset'), run.get('val_split'))
    if not same_split:
        return None
    return (f'the checkpoint: epoch {pub.epoch + 1} of {epochs}, not the final one (train.py keeps `model_best` '
            f"and `checkpoint-*` by {run.get('eval_metric') or 'top1'} on this split)")


def _pct(value: Optional[float]) -> str:
    return 'diverged' if value is None else f'{value:.2f}%'


def _held_out(seeds: Optional[SeedSpread]) -> bool:
    """Whether a tag's seed was chosen on validation and its numbers (results and seed spread, which publishing
    keeps on the entry's `metrics_split`) are on the test split: nothing it reports was chosen on their images."""
    return seeds is not None and seeds.split == 'test'


def _evaluation_lines(pub: Any, run: Dict[str, Any], dataset: str, seeds: Optional[SeedSpread],
                      info: DatasetInfo) -> List[str]:
    """The card's Evaluation section: each number with its dataset, split and what was chosen on that split."""
    row = pub.results
    if not row:
        return ['## Evaluation', '', 'No validation results were published with these weights.', '']
    entry = pub.registry_entry
    split, images = row.get('split', ''), row.get('num_images', '')
    held_out = _held_out(seeds)
    chosen = [entry.selection] if entry is not None and entry.selection and not held_out else []
    ckpt = _checkpoint_choice(pub, run)
    if ckpt:
        chosen.append(ckpt)
    picked = '; '.join(chosen) if chosen else ('nothing: final weights of one run' if ckpt == '' and not seeds
                                               else 'nothing: the seed was chosen on validation' if held_out
                                               else 'not recorded')
    lines = ['## Evaluation', '',
             'Measured by timm-nf `train/validate.py` on the published weights; `model-index` above holds the same '
             'numbers.', '',
             '| metric | value | dataset | split | images | chosen on this split |',
             '|---|---:|---|---|---:|---|',
             f"| top-1 accuracy | {_fmt(row['top1'])}% | {dataset} | {split} | {images} | {picked} |"]
    if row.get('top5') not in (None, ''):
        lines.append(f"| top-5 accuracy | {_fmt(row['top5'])}% | {dataset} | {split} | {images} | "
                     f"{'the same' if chosen else picked} |")
    lines.append('')
    if held_out:
        lines += _held_out_lines(pub, run, dataset, seeds, info)
    elif seeds is not None:
        values = ', '.join(f'seed {seed} {_pct(top1)}' for seed, top1 in seeds.top1)
        lines += [f'**Selected on the split it is measured on.** These weights are {entry.selection}, chosen on the '
                  f'same {images} {split} images the table reports: their numbers are an optimistic estimate of what '
                  f'the recipe gives. The median over the {len(seeds.top1)} seeds of the final {split} top-1 is '
                  f'**{_pct(seeds.median)}** ({values}; published: seed {seeds.chosen}; from each seed\'s training '
                  f'run, `{seeds.source}` in the timm-nf repository). No other split was measured.', '']
    elif chosen:
        lines += [f'**Chosen on the split it is measured on:** {"; ".join(chosen)}. The numbers above flatter these '
                  'weights; no median over seeds was recorded.', '']
    elif ckpt == '':
        seed = f' (seed {run["seed"]})' if run.get('seed') is not None else ''
        lines += [f'**Nothing was chosen on this split.** These are the final weights of a single training run{seed}: '
                  'no seed and no checkpoint was selected on these images, and with one run there is no median '
                  'over seeds.', '']
    else:
        lines += ['Whether a seed or checkpoint was chosen on this split is not recorded with these weights.', '']
    return lines


def _held_out_lines(pub: Any, run: Dict[str, Any], dataset: str, seeds: SeedSpread, info: DatasetInfo) -> List[str]:
    """What a card says of weights whose seed was chosen on validation and whose numbers are on the test split:
    that nothing was chosen on the test images, the seed median on them, and the command that measures them."""
    entry, row = pub.registry_entry, pub.results
    images = f"{int(row['num_images']):,} images" if str(row.get('num_images', '')).isdigit() else 'all its images'
    used = run.get('val_num_samples')
    validation = f'the validation split ({info.validation or "held out from training"}' + (
        f'; this seed\'s run used a fixed stratified {int(used):,} of them)' if used else ')')
    values = ', '.join(f'seed {seed} {_pct(top1)}' for seed, top1 in seeds.top1)
    files = f' ({info.files})' if info.files else ''
    return [
        f"**Nothing was chosen on the test split.** The numbers above are on {info.name}'s official test split "
        f'({images}), which was measured once per seed, on the final weights after training, and used for nothing '
        f'else. These weights are {entry.selection}, chosen on {validation}. The median over the '
        f'{len(seeds.top1)} seeds of the final test top-1 is **{_pct(seeds.median)}** ({values}; published: seed '
        f"{seeds.chosen}; from each seed's training run, `{seeds.source}` in the timm-nf repository).", '',
        f'**Measure it again** from the root of a clone of the timm-nf repository, with {info.name}\'s official '
        f'files{files}: `python train/validate.py --model local-dir:{entry.published} --pretrained --dataset '
        f"{dataset} --split test` gives the numbers above (timm's eval transform from the folder's `config.json`).",
        '']


def _getting_started_lines(pub: Any, info: DatasetInfo) -> Tuple[List[str], str, str]:
    """The card's Getting started section, the spec its snippets load and the comment beside it."""
    extra = (f"pip install '.[{info.extra}]'   # the same plus what reading the dataset needs, to validate on it"
             if info.extra else '')
    lines = ['## Getting started', '',
             'timm-nf is not on a package index: clone the timm-nf repository, then install it from the clone\'s '
             'root (Python >= 3.10):', '', '```bash',
             'pip install .             # timm-nf and timm: the architecture and its pretrained tags']
    lines += [extra] if extra else []
    lines += ['```', '']
    entry = pub.registry_entry
    if entry is not None:
        spec = f'local-dir:{entry.published}'
        lines += [f'**Where the weights are.** In the timm-nf repository, in the folder `{entry.published}/` '
                  f'(this card\'s folder, committed with the weights). When this card was written they had not been '
                  'uploaded to the Hugging Face Hub, so load them from that folder, at the root of the clone:', '',
                  '```python', 'import timm, timm_nf  # timm_nf registers the architecture and its pretrained tags',
                  f"model = timm.create_model('{spec}', pretrained=True)", '```', '',
                  f'`python hub/publish.py --all --push` (with a Hugging Face token) uploads the folder to the Hub '
                  f'repo `{entry.hub_id}`; from then on the tag loads it anywhere: '
                  f"`timm.create_model('{entry.name}', pretrained=True)`, or "
                  f"`timm.create_model('hf-hub:{entry.hub_id}', pretrained=True)`. Before that, the tag fails with "
                  'an error naming the folder above.', '']
        return lines, spec, f"from the clone's root; once on the Hub: '{entry.name}'"
    spec = f'hf-hub:{pub.hub_ref}'
    lines += [f'**Where the weights are.** This folder, written by timm-nf\'s `hub/publish.py`, is the content of '
              f'the Hub repo `{pub.repo_id}`. Once uploaded (`python hub/publish.py --out FOLDER --repo-id '
              f'{pub.repo_id} --push`), `timm.create_model(\'{spec}\', pretrained=True)` loads it; before that, '
              "load the folder itself: `timm.create_model('local-dir:FOLDER', pretrained=True)`.", '']
    return lines, spec, "or 'local-dir:FOLDER' before the upload"


def render_card(pub: Any, config: Dict[str, Any]) -> str:
    """Model card of a `hub.publishing.Publication` whose `config.json` is `config`."""
    arch = pub.model_name
    pcfg = config['pretrained_cfg']
    build_args = {k: v for k, v in pub.model_args.items() if k not in _NON_ARCH_ARGS[3:]}
    img = int(pcfg['input_size'][-1])
    stats = model_stats(arch, img_size=img, **build_args)
    acts = model_activations(arch, img_size=img, **build_args)
    row = pub.results or {}
    dataset = str(row.get('dataset') or '')
    entry = pub.registry_entry
    if entry is not None:
        dataset = entry.dataset
    info = dataset_info(dataset)
    dataset_desc = entry.dataset_name if entry is not None else info.description
    doc = (timm.models.model_entrypoint(arch).__doc__ or '').strip().splitlines()
    what = doc[0].rstrip('.') if doc else arch
    variant = {k: v for k, v in pub.model_args.items() if k not in _NON_ARCH_ARGS}
    tag_name = f'{arch}.{pub.tag}' if pub.tag else ''
    run = _run_args(pub.hparams_text)
    seeds = study_seeds(entry, pub.root) if entry is not None else None

    lines = [_front_matter(pub, config, dataset, info, dataset_desc), f'# Model card for {pub.name}', '']
    trained_on = f' trained on {dataset_desc}' if dataset_desc else ''
    lines += [f'{what}{" with " + ", ".join(f"`{k}={v!r}`" for k, v in variant.items()) if variant else ""}, an '
              f'image classification model{trained_on}, published with timm-nf (which registers the architecture '
              f'in timm).', '']
    started, load_spec, load_note = _getting_started_lines(pub, info)
    lines += started
    lines += _evaluation_lines(pub, run, dataset, seeds, info)

    lines += ['## Model Details', '',
              '- **Model Type:** Image classification / feature backbone',
              '- **Model Stats:**',
              f'  - Params (M): {stats.params / 1e6:.3f}',
              f'  - GMACs: {stats.gmacs:.3f}',
              f'  - Activations (M): {acts / 1e6:.3f}',
              f'  - Image size: {img} x {img}',
              f"- **Architecture:** `{arch}`" + (f" with `model_args` {variant}" if variant else
                                                 ' (the registered name alone rebuilds it)'),
              '- **Papers:**']
    lines += [f"  - {PAPERS[k]['title']} ({PAPERS[k]['venue']})" for k in _paper_keys(arch)]
    if dataset_desc:
        lines.append(f'- **Dataset:** {dataset_desc}')
    recipe = entry.recipe if entry is not None else ''
    hp = '[train_hparams.yaml](train_hparams.yaml)' if pub.hparams_text else 'not recorded'
    lines.append('- **Recipe:** timm-nf `train/train.py`' + (f' with `{recipe}`' if recipe else '') +
                 f'; the run\'s arguments: {hp}')
    summary = _run_summary(run)
    if summary:
        lines.append(f'- **Training run:** {summary}')
    if entry is not None and entry.origin:
        lines.append(f'- **Origin:** {entry.origin}')
    which = 'EMA weights' if pub.use_ema else 'model weights (not EMA)'
    epoch = ''
    if pub.epoch is not None:  # checkpoints count epochs from 0
        epoch = f' after epoch {pub.epoch + 1}' + (f" of {run['epochs']}" if isinstance(run.get('epochs'), int) else '')
    lines.append(f'- **Weights:** {which}{epoch} of the checkpoint with sha256 `{pub.checkpoint_sha256}`')
    if pub.tag:
        lines.append(f'- **Pretrained tag:** `{tag_name}` (Hub repo `{pub.repo_id}`; see Getting started for where '
                     'the weights are)')
    lines += ['- **Preprocessing:** ' + f"{img}x{img} input, crop_pct {pcfg.get('crop_pct')}, "
              f"{pcfg.get('interpolation')} interpolation, mean {tuple(pcfg.get('mean'))}, "
              f"std {tuple(pcfg.get('std'))}", '']

    load = f"'{load_spec}'"
    lines += ['## Model Usage', '', f'`MODEL` below is `{load_spec}` ({load_note}).', '']
    lines += ['### Image Classification', '', '```python', 'import torch', 'from PIL import Image', 'import timm',
              'import timm_nf  # registers the architecture', '',
              f'MODEL = {load}',
              "img = Image.open('image.png').convert('RGB')", '',
              'model = timm.create_model(MODEL, pretrained=True)', 'model = model.eval()', '',
              '# model-specific transforms (normalization, resize)',
              'data_config = timm.data.resolve_model_data_config(model)',
              'transforms = timm.data.create_transform(**data_config, is_training=False)', '',
              'output = model(transforms(img).unsqueeze(0))  # unsqueeze single image into batch of 1',
              f'top_probabilities, top_class_indices = torch.topk(output.softmax(dim=1) * 100, '
              f'k={min(5, int(config["num_classes"]))})', '```', '']
    feat = timm.create_model(arch, device='meta', features_only=True, **build_args)
    with torch.no_grad():
        feats = feat(torch.empty(1, 3, img, img, device='meta'))
    lines += ['### Feature Map Extraction', '', '```python', 'import timm, timm_nf', '',
              'model = timm.create_model(MODEL, pretrained=True, features_only=True)', 'model = model.eval()',
              'data_config = timm.data.resolve_model_data_config(model)',
              'transforms = timm.data.create_transform(**data_config, is_training=False)',
              'output = model(transforms(img).unsqueeze(0))', '', 'for o in output:',
              '    # print shape of each feature map in output, e.g.:']
    lines += [f'    #  {tuple(f.shape)}' for f in feats]
    lines += ['    print(o.shape)', '```', '']
    lines += ['### Image Embeddings', '', '```python', 'import timm, timm_nf', '',
              'model = timm.create_model(MODEL, pretrained=True, num_classes=0)  # remove classifier',
              'model = model.eval()', 'data_config = timm.data.resolve_model_data_config(model)',
              'transforms = timm.data.create_transform(**data_config, is_training=False)',
              f'output = model(transforms(img).unsqueeze(0))  # (1, {config["num_features"]}) shaped tensor', '',
              '# or equivalently (without needing to set num_classes=0)',
              'output = model.forward_features(transforms(img).unsqueeze(0))',
              f'# unpooled output is a (1, {config["num_features"]}, {feats[-1].shape[-2]}, '
              f'{feats[-1].shape[-1]}) shaped tensor',
              'output = model.forward_head(output, pre_logits=True)',
              f'# output is a (1, {config["num_features"]}) shaped tensor', '```', '']

    lines += ['## Model Comparison', '']
    lines += ['| model | dataset | split | top-1 | top-1 err | top-5 | top-5 err | params (M) | GMACs | source |',
              '|---|---|---|---:|---:|---:|---:|---:|---:|---|']
    if row:
        chosen = '' if entry is None or not entry.selection else \
            '; seed chosen on validation' if _held_out(seeds) else '; seed chosen on this split'
        lines.append(f"| `{pub.name}` | {dataset} | {row.get('split', '')} | {_fmt(row['top1'])} | "
                     f"{_fmt(row.get('top1_err'))} | {_fmt(row.get('top5'))} | {_fmt(row.get('top5_err'))} | "
                     f'{stats.params / 1e6:.3f} | {stats.gmacs:.3f} | this model, timm-nf `train/validate.py`'
                     f'{chosen} (see Evaluation) |')
    matches = paper_rows(arch, pub.model_args)
    for label, prow, metrics in matches:
        errs = dict(zip(metrics, prow.errors))
        if 'ImageNet top-1 err' in errs:
            lines.append(f"| `{call_str(prow)}` | ImageNet-1k | val | - | {_fmt(errs['ImageNet top-1 err'])} | - | "
                         f"{_fmt(errs['ImageNet top-5 err'])} | {stats.params / 1e6:.3f} | {stats.gmacs:.3f} | "
                         f'{label}: {prow.norm} {prow.act} |')
        else:
            for metric, err in errs.items():
                lines.append(f"| `{call_str(prow)}` | {metric.split()[0]} | test | - | {_fmt(err)} | - | - | "
                             f'{stats.params / 1e6:.3f} | {stats.gmacs:.3f} | {label}: {prow.norm} {prow.act} |')
    lines.append('')
    if not matches:
        lines += ["The papers report no numbers for this architecture (timm-nf's MODEL_CARDS.md maps their table "
                  'rows to the models that reproduce them).', '']
    else:
        lines += ["Paper rows: the same architecture as reported in the paper (its datasets and training "
                  'schedule, not necessarily this model\'s).', '']

    lines += ['## Citation', '', 'The architecture:', '']
    for key in _paper_keys(arch):
        lines += ['```bibtex', PAPERS[key]['bibtex'], '```']
    if info.bibtex:
        lines += ['', f'The dataset ({info.name}):', '', '```bibtex', info.bibtex, '```']
    lines += ['', 'timm (PyTorch Image Models):', '', '```bibtex', TIMM_BIBTEX, '```', '']
    return '\n'.join(lines)
