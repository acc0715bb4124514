#!/usr/bin/env bash
# Run the timm contract and model zoo tests (tests/test_timm_contract.py, tests/test_models.py) against given
# versions of Python, timm and torch: the check behind the version floors in pyproject.toml.
#
# Usage:
#   tests/compat/run_floor_tests.sh [--python PY] [--timm VER] [--torch VER] [--torchvision VER] [--with SPEC]...
#                                   [--keep] [-- extra pytest args...]
#
#   --python PY         interpreter that creates the venv (default: python3)
#   --timm VER          timm release to install, e.g. 1.0.31 (default: the newest pip allows)
#   --torch VER         torch release (default: the newest pip allows)
#   --torchvision VER   torchvision release (default: the one pip resolves for the torch above)
#   --with SPEC         one more requirement to install, e.g. huggingface_hub==0.34.0 (repeatable)
#   --keep              keep the venv and print its path (default: removed at exit)
#
# The venv is made in a fresh temporary directory; the project is installed into it from this checkout's working
# tree as a regular (non-editable) package with its dev extra, so the tests import the installed copy. pytest runs
# from another temporary directory, so nothing of the checkout shadows it; the contract test fetches the timm
# sdist that matches the installed timm (tests/timm_contract/run_timm_model_tests.sh). pip keeps its own
# configuration and environment (PIP_CONSTRAINT, PIP_INDEX_URL, ...): `PIP_CONSTRAINT= tests/compat/...` lifts a
# constraints file set in pip's configuration for this run only.
#
# The floor runs named in pyproject.toml:
#   tests/compat/run_floor_tests.sh --python python3.10 --timm 1.0.31
#   tests/compat/run_floor_tests.sh --python python3.11 --timm 1.0.31 --torch 2.5.1 --torchvision 0.20.1 \
#       --with huggingface_hub==0.34.0
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
python=python3
timm_version=
torch_version=
torchvision_version=
extra=()
keep=0
while [[ $# -gt 0 ]]; do
    case $1 in
        --python) python=${2:?--python needs an interpreter}; shift 2 ;;
        --timm) timm_version=${2:?--timm needs a version}; shift 2 ;;
        --torch) torch_version=${2:?--torch needs a version}; shift 2 ;;
        --torchvision) torchvision_version=${2:?--torchvision needs a version}; shift 2 ;;
        --with) extra+=("${2:?--with needs a requirement}"); shift 2 ;;
        --keep) keep=1; shift ;;
        --) shift; break ;;
        *) echo "error: unknown argument '$1'; usage: $0 [--python PY] [--timm VER] [--torch VER]" \
                "[--torchvision VER] [--with SPEC]... [--keep] [-- pytest args...]" >&2; exit 2 ;;
    esac
done
if ! "$python" -c 'import venv' > /dev/null 2>&1; then
    echo "error: '$python' does not run as a Python with venv; pass --python with the interpreter's path" >&2
    exit 2
fi

tmp="$(mktemp -d "${TMPDIR:-/tmp}/timm-nf-floor.XXXXXX")"
if [[ $keep == 1 ]]; then
    trap 'echo "venv kept: $tmp/venv" >&2' EXIT
else
    trap 'rm -rf "$tmp"' EXIT
fi

# Build from a copy of what the package is made of, so no build/ or egg-info directory lands in the checkout
# and none left there by an earlier build leaks stale files into the wheel.
mkdir "$tmp/src"
cp -r "$repo/pyproject.toml" "$repo/README.md" "$repo/LICENSE" "$repo/timm_nf" "$tmp/src/"
"$python" -m venv "$tmp/venv"
venv_python=$tmp/venv/bin/python
# Each package is named with its version when one is given, unpinned otherwise; the project's own ranges in
# pyproject.toml apply on top, so asking for a version outside them fails at install time.
"$venv_python" -m pip install --no-input "torch${torch_version:+==$torch_version}" \
    "torchvision${torchvision_version:+==$torchvision_version}" "timm${timm_version:+==$timm_version}" \
    "$tmp/src[dev]" ${extra[@]+"${extra[@]}"}

mkdir "$tmp/run"
cd "$tmp/run"
"$venv_python" - <<'PY'
import platform, sys
import huggingface_hub, timm, torch, torchvision, timm_nf
assert 'site-packages' in timm_nf.__file__, f'timm_nf imported from {timm_nf.__file__}, not the installed copy'
print(f'python {platform.python_version()}, torch {torch.__version__}, torchvision {torchvision.__version__}, '
      f'timm {timm.__version__}, huggingface_hub {huggingface_hub.__version__}, timm_nf from {timm_nf.__file__}',
      file=sys.stderr)
PY
"$venv_python" -m pytest "$repo/tests/test_timm_contract.py" "$repo/tests/test_models.py" -p no:cacheprovider \
    -n 1 "$@"
