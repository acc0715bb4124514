#!/usr/bin/env python3
"""Publish a trained checkpoint as a Hugging Face Hub repo timm loads (`hf-hub:OWNER/REPO` or a pretrained tag).

Writes DIR with `model.safetensors`, `config.json` (timm's Hub format), `README.md` (the model card, metrics from
--results) and `train_hparams.yaml` (the run's args.yaml, its paths relative to this repository); with --push
uploads DIR as one commit (token from HF_TOKEN or `hf auth login`).

Examples:
    # an hf-hub: repo (any model, keyword variants included: config.json carries model_args)
    python hub/publish.py --checkpoint output/run/model_best.pth.tar --model crelu_resnet20 \
        --repo-id me/crelu_resnet20_relu.digits --results results.json --out out/hub --push
    # a pretrained tag of a registered name (timm.create_model('crelu_resnet20.digits', pretrained=True))
    python hub/publish.py --checkpoint output/run/model_best.pth.tar --model crelu_resnet20 --tag digits \
        --results hub/results/crelu_resnet20.digits.json --out hub/published/crelu_resnet20.digits --verify
    # retry a failed upload of DIR
    python hub/publish.py --out hub/published/crelu_resnet20.digits --repo-id timm-nf/crelu_resnet20.digits --push
    # every folder of hub/published/: list them and which the Hub lacks (dry run), then upload those, one commit each
    python hub/publish.py --all
    python hub/publish.py --all --push
    # write every folder again from its own files after a card or version change (the same weights, checked)
    python hub/publish.py --all --regenerate
"""
import argparse
import logging
import os
import sys
from typing import Dict, Optional

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)  # repository tooling (hub.publishing); timm_nf itself may be installed or this checkout's

import safetensors.torch  # noqa: E402
import torch  # noqa: E402

import timm_nf  # noqa: E402,F401  (registers the timm-nf models with timm)
from hub.publishing import (  # noqa: E402
    WEIGHTS_FILE, PublishError, hub_status, plan_publications, prepare_publication, prepare_republication,
    push_folder, push_publications, verify_round_trip, write_publication,
)

PUBLISHED_ROOT = os.path.join(REPO, 'hub', 'published')


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description='Publish trained weights to the Hugging Face Hub (timm format)')
    parser.add_argument('--checkpoint', default='', metavar='PATH',
                        help='training checkpoint (.pth.tar), state_dict (.pth) or .safetensors; leave out with '
                             '--push to upload an existing DIR again')
    parser.add_argument('--model', default='', metavar='NAME', help='registered architecture (NAME.TAG = --tag TAG)')
    parser.add_argument('--tag', default='', help='publish as the pretrained tag NAME.TAG (registered names only)')
    parser.add_argument('--repo-id', default=None, metavar='OWNER/REPO',
                        help='Hub repo (default with --tag: timm-nf/NAME.TAG)')
    parser.add_argument('--out', default=None, metavar='DIR', help='folder to write the repo content to')
    parser.add_argument('--all', nargs='?', const=PUBLISHED_ROOT, default=None, metavar='ROOT',
                        help='every publication folder under ROOT (default hub/published/): list each folder, its '
                             'files, its target repo and whether the Hub has it (dry run; says so when the Hub '
                             'cannot be asked); with --push upload those the Hub does not hold identically yet, one '
                             'commit each; with --regenerate write each again from its own files')
    ema = parser.add_mutually_exclusive_group()
    ema.add_argument('--ema', dest='use_ema', action='store_const', const=True, default=None,
                     help='publish the EMA weights')
    ema.add_argument('--no-ema', dest='use_ema', action='store_const', const=False,
                     help='publish the model weights (default: the better validated set)')
    parser.add_argument('--results', default=None, metavar='FILE',
                        help='results file of train/validate.py for this checkpoint (JSON or CSV)')
    parser.add_argument('--hparams', default=None, metavar='FILE',
                        help="the run's args.yaml (default: args.yaml next to the checkpoint)")
    parser.add_argument('--push', action='store_true', help='upload DIR to the Hub as one commit')
    parser.add_argument('--private', action='store_true', help='create the Hub repo private')
    parser.add_argument('--revision', default='', help='Hub branch to commit to (default: main)')
    parser.add_argument('--regenerate', action='store_true',
                        help='write DIR (--out) or every folder (--all) again from its own files: the same weights '
                             '(checked tensor by tensor) with this version\'s card, config.json and metadata; no '
                             'checkpoint needed')
    parser.add_argument('--verify', action='store_true',
                        help='load DIR back offline (Hub cache layout, HF_HUB_OFFLINE=1) and compare with the '
                             'checkpoint')
    return parser


def publish_all(root: str, push: bool) -> int:
    plans = plan_publications(root)
    status, why = (None, '') if push else hub_status(plans)
    for plan in plans:
        files = ', '.join(f'{name} {size / 1e6:.2f} MB' for name, size in plan.files.items())
        where = '' if status is None else (' (on the Hub)' if status[plan.repo_id] else ' (not on the Hub yet)')
        print(f'{plan.folder} -> {plan.repo_id}{where}: {files}')
    if not push:
        if status is None:
            print(f'Hub: could not ask which of these repos exist ({why}); until a push, the folders above are the '
                  "only copy of their weights (timm.create_model('local-dir:FOLDER', pretrained=True))")
        else:
            missing = [plan.repo_id for plan in plans if not status[plan.repo_id]]
            print(f'Hub: {len(missing)} of {len(plans)} repos not on the Hub yet'
                  + (f": {', '.join(missing)}" if missing else ''))
        print(f'dry run: {len(plans)} folders; add --push to upload those the Hub does not hold identically yet')
        return 0
    for plan, result in push_publications(plans):
        print(f'{plan.repo_id}: {result}')
    return 0


def regenerate(folder: str, repo_id: Optional[str], results: Optional[str], revision: str) -> None:
    """Write a publication folder again from its own files; its tensors must come out equal."""
    weights = os.path.join(folder, WEIGHTS_FILE)
    pub = prepare_republication(folder, repo_id=repo_id, results=results, revision=revision)
    old = safetensors.torch.load_file(weights)
    _check_same_tensors(old, pub.model.state_dict(), folder)
    names = write_publication(pub, folder)
    _check_same_tensors(old, safetensors.torch.load_file(weights), folder)
    print(f'regenerated {folder}: {", ".join(names)} ({len(old)} tensors unchanged)')


def _check_same_tensors(old: Dict[str, torch.Tensor], new: Dict[str, torch.Tensor], folder: str) -> None:
    changed = sorted(set(old) ^ set(new)) + [k for k in old if k in new and not torch.equal(old[k], new[k])]
    if changed:
        raise PublishError(f'regenerating {folder} would change its weights ({", ".join(changed[:4])}); '
                           f'publish it from its checkpoint instead (--checkpoint)')


def main(argv=None) -> int:
    logging.basicConfig(level=logging.WARNING, format='%(levelname)s: %(message)s')
    args = build_parser().parse_args(argv)
    try:
        if args.regenerate:
            if args.checkpoint or args.push:
                raise PublishError('--regenerate rewrites existing folders from their own files; run it without '
                                   '--checkpoint and --push')
            if args.all is not None:
                folders = [str(plan.folder) for plan in plan_publications(args.all)]
            elif args.out:
                folders = [args.out]
            else:
                raise PublishError('--regenerate needs --out DIR or --all')
            for folder in folders:
                regenerate(folder, args.repo_id, args.results, args.revision)
            return 0
        if args.all is not None:
            return publish_all(args.all, args.push)
        if not args.out:
            raise PublishError('--out DIR is required (or --all to list / upload every folder of hub/published/)')
        repo_id = args.repo_id
        if args.checkpoint:
            if not args.model:
                raise PublishError('--model NAME is required with --checkpoint')
            pub = prepare_publication(
                args.checkpoint, args.model, repo_id=repo_id, tag=args.tag, use_ema=args.use_ema,
                results=args.results, hparams=args.hparams, revision=args.revision)
            names = write_publication(pub, args.out)
            repo_id = pub.repo_id
            print(f'wrote {args.out}: {", ".join(names)} ({"EMA" if pub.use_ema else "model"} weights)')
            if args.verify:
                tag_name = f'{pub.model_name}.{pub.tag}' if pub.registry_entry is not None else ''
                report = verify_round_trip(args.out, pub.repo_id, args.checkpoint, tag_name, pub.use_ema)
                if not report['ok']:
                    raise PublishError(f'offline round trip of {args.out} does not reproduce the checkpoint: {report}')
                print(f"round trip ok: {', '.join(k for k in report if k != 'ok')} load the checkpoint's weights "
                      f'and outputs exactly (HF_HUB_OFFLINE=1)')
        elif not args.push:
            raise PublishError('--checkpoint PATH is required (or --push alone, to upload an existing --out DIR)')
        if args.push:
            if not repo_id:
                raise PublishError('--repo-id OWNER/REPO is required to upload an existing DIR')
            url = push_folder(args.out, repo_id, private=args.private, revision=args.revision)
            print(f'uploaded {args.out} to {repo_id}: {url}')
    except PublishError as e:
        print(f'error: {e}', file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
