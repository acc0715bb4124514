"""The model card (`README.md`) of a published model, in the layout of timm's own Hub cards.

YAML front matter (written by `huggingface_hub.ModelCardData`): `library_name: timm`, `tags`, `license`,
`datasets`, `pipeline_tag` and the validation metrics as `model-index`. Then: model details (params, GMACs,
activations, image size, papers, dataset, recipe), usage (classification, feature maps, embeddings), a comparison
with the paper's numbers for the same architecture where the papers report any, and citations.

Every metric comes from the validation results row of the publication; sizes and costs are measured on the
model; nothing is typed in.
"""
from dataclasses import fields
from functools import lru_cache
from typing import Any, Dict, List, Optional, Tuple

import torch
import yaml

import timm
from huggingface_hub import EvalResult, ModelCardData

from timm_nf.models import ResidualNet
from timm_nf.paper import TABLE2, TABLE4, PaperRow, call_str
from timm_nf.profile import model_activations, model_stats

__all__ = ['render_card', 'paper_rows', 'PAPERS', 'DATASETS']

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

# Dataset name as train/validate.py records it -> (Hub dataset id for the card metadata, description).
DATASETS = {
    'digits': ('digits', "scikit-learn's 8x8 handwritten digits (UCI optdigits, 1,437 train / 360 validation "
                         'images), upsampled to 32x32 RGB'),
    'imagenet': ('imagenet-1k', 'ImageNet-1k'),
    'torch/cifar10': ('cifar10', 'CIFAR-10'),
    'torch/cifar100': ('cifar100', 'CIFAR-100'),
}

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


def _front_matter(pub: Any, config: Dict[str, Any], dataset_id: str, dataset_desc: str) -> str:
    row = pub.results
    eval_results = None
    if row:
        common = dict(task_type='image-classification', task_name='Image Classification', dataset_type=dataset_id,
                      dataset_name=dataset_desc, dataset_split=str(row.get('split') or 'validation'))
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
        datasets=[dataset_id] if dataset_id else None, pipeline_tag='image-classification',
        metrics=['accuracy'] if row else None, model_name=pub.name, eval_results=eval_results,
    )
    return '---\n' + data.to_yaml() + '\n---\n'


def _run_summary(hparams_text: Optional[str]) -> str:
    """'seed 1, lr 0.025, batch 32, 30 epochs' from the run's args.yaml (empty when it was not recorded)."""
    if not hparams_text:
        return ''
    try:
        args = yaml.safe_load(hparams_text)
    except yaml.YAMLError:
        return ''
    if not isinstance(args, dict):
        return ''
    parts = [f'{label} {args[key]}' for key, label in (('seed', 'seed'), ('lr', 'lr'), ('batch_size', 'batch'))
             if args.get(key) is not None]
    if args.get('epochs') is not None:
        parts.append(f"{args['epochs']} epochs")
    return ', '.join(parts)


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
    if pub.registry_entry is not None:
        dataset_id, dataset_desc = pub.registry_entry.dataset, pub.registry_entry.dataset_name
    else:
        dataset_id, dataset_desc = DATASETS.get(dataset, (dataset, dataset))
    doc = (timm.models.model_entrypoint(arch).__doc__ or '').strip().splitlines()
    what = doc[0].rstrip('.') if doc else arch
    variant = {k: v for k, v in pub.model_args.items() if k not in _NON_ARCH_ARGS}
    hub = pub.hub_ref
    tag_name = f'{arch}.{pub.tag}' if pub.tag else ''

    lines = [_front_matter(pub, config, dataset_id, dataset_desc), f'# Model card for {pub.name}', '']
    trained_on = f' trained on {dataset_desc}' if dataset_desc else ''
    lines += [f'{what}{" with " + ", ".join(f"`{k}={v!r}`" for k, v in variant.items()) if variant else ""}, an '
              f'image classification model{trained_on}, published with timm-nf (which registers the architecture '
              f'in timm).', '']

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
    recipe = pub.registry_entry.recipe if pub.registry_entry is not None else ''
    hp = '[train_hparams.yaml](train_hparams.yaml)' if pub.hparams_text else 'not recorded'
    lines.append('- **Recipe:** timm-nf `train/train.py`' + (f' with `{recipe}`' if recipe else '') +
                 f'; the run\'s arguments: {hp}')
    run = _run_summary(pub.hparams_text)
    if run:
        lines.append(f'- **Training run:** {run}')
    if pub.registry_entry is not None and pub.registry_entry.origin:
        lines.append(f'- **Origin:** {pub.registry_entry.origin}')
    which = 'EMA weights' if pub.use_ema else 'model weights (not EMA)'
    epoch = f' after epoch {pub.epoch}' if pub.epoch is not None else ''
    lines.append(f'- **Weights:** {which}{epoch} of the checkpoint with sha256 `{pub.checkpoint_sha256}`')
    if pub.tag:
        lines.append(f'- **Pretrained tag:** `{tag_name}` (`timm.create_model("{tag_name}", pretrained=True)`)')
    lines += ['- **Preprocessing:** ' + f"{img}x{img} input, crop_pct {pcfg.get('crop_pct')}, "
              f"{pcfg.get('interpolation')} interpolation, mean {tuple(pcfg.get('mean'))}, "
              f"std {tuple(pcfg.get('std'))}", '']

    load = f'"hf-hub:{hub}"'
    lines += ['## Model Usage', '',
              f'Download the files with `hf download {pub.repo_id}`' +
              (f' --revision {pub.revision}' if pub.revision and pub.revision != 'main' else '') +
              '; timm fetches them itself:', '']
    if pub.tag:
        lines += ['```python', 'import timm, timm_nf  # timm_nf registers the architecture and the tag',
                  f'model = timm.create_model("{tag_name}", pretrained=True)', '```', '']
    lines += ['### Image Classification', '', '```python', 'import torch', 'from PIL import Image', 'import timm',
              'import timm_nf  # registers the architecture', '',
              "img = Image.open('image.png').convert('RGB')", '',
              f'model = timm.create_model({load}, pretrained=True)', 'model = model.eval()', '',
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
              f'model = timm.create_model({load}, pretrained=True, features_only=True)', 'model = model.eval()',
              'data_config = timm.data.resolve_model_data_config(model)',
              'transforms = timm.data.create_transform(**data_config, is_training=False)',
              'output = model(transforms(img).unsqueeze(0))', '', 'for o in output:',
              '    # print shape of each feature map in output, e.g.:']
    lines += [f'    #  {tuple(f.shape)}' for f in feats]
    lines += ['    print(o.shape)', '```', '']
    lines += ['### Image Embeddings', '', '```python', 'import timm, timm_nf', '',
              f'model = timm.create_model({load}, pretrained=True, num_classes=0)  # remove classifier',
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
        lines.append(f"| `{pub.name}` | {dataset_id} | {row.get('split', '')} | {_fmt(row['top1'])} | "
                     f"{_fmt(row.get('top1_err'))} | {_fmt(row.get('top5'))} | {_fmt(row.get('top5_err'))} | "
                     f'{stats.params / 1e6:.3f} | {stats.gmacs:.3f} | this model, timm-nf `train/validate.py` |')
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

    lines += ['## Citation', '']
    for key in _paper_keys(arch):
        lines += ['```bibtex', PAPERS[key]['bibtex'], '```']
    lines += ['```bibtex', TIMM_BIBTEX, '```', '']
    return '\n'.join(lines)
