#!/usr/bin/env bash
# The README's main job: train a CIFAR-layout model on the embedded digits (no download), validate it, and
# print where the outputs are. About 2-3 minutes on 2 CPU cores; >= 97% validation top-1 (see the recipe).
#
# Usage: train/digits_demo.sh [MODEL] [extra train.py flags...]
#   MODEL   default crelu_resnet20 (any CIFAR-layout model: nf_resnet20, normprop_resnet20, crelu_resnet56, ...)
# Environment: PYTHON (default: python), OUTPUT (default: output/digits).
# Re-running the same command continues an interrupted run (--resume auto) or, if it finished, re-validates it.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python=${PYTHON:-python}
model=${1:-crelu_resnet20}
shift $(( $# > 0 ? 1 : 0 ))
output=${OUTPUT:-output/digits}
exp_dir="$output/$model"

"$python" "$here/train.py" --config "$here/recipes/digits.yaml" --model "$model" \
    --output "$output" --experiment "$model" --resume auto "$@"
# The final weights (last.pth.tar), not the best epoch: choosing by validation accuracy would flatter it.
"$python" "$here/validate.py" --checkpoint "$exp_dir/last.pth.tar" --dataset digits --split validation \
    --workers 0 --results-file "$exp_dir/validate.json" --results-format json > "$exp_dir/validate.log" 2>&1 \
    || { cat "$exp_dir/validate.log" >&2; exit 1; }

"$python" - "$exp_dir" <<'PY'
import json, sys
d = sys.argv[1]
r = json.load(open(f'{d}/validate.json'))
print(f"\n{r['model']}: digits validation top-1 {r['top1']:.2f}% ({r['num_images']} images), "
      f"{r['param_count']}M parameters")
print(f"outputs in {d}/:")
for name, what in [('last.pth.tar', 'final checkpoint'), ('model_best.pth.tar', 'best epoch'),
                   ('summary.csv', 'per-epoch metrics'), ('args.yaml', 'full configuration'),
                   ('train.log', 'training log'), ('validate.json', 'validation result')]:
    print(f'  {name:<20} {what}')
PY
