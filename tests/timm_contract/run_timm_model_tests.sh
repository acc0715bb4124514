#!/usr/bin/env bash
# Run timm's own per-model contract tests (tests/test_models.py from the timm source distribution
# that matches the installed timm) on the models selected by a pytest -k expression, with timm_nf's
# models registered first (see conftest.py next to this script).
#
# Usage:
#   PYTHON=/path/to/venv/bin/python tests/timm_contract/run_timm_model_tests.sh '<-k expr>' [pytest args...]
#   -k matches substrings of test ids such as test_model_forward[1-crelu_resnet20] and
#   test_model_default_cfgs[1-crelu_resnet20.some_tag], so a bare name also selects longer names that
#   contain it (resnet18 -> seresnet18). To select exactly one model: '-crelu_resnet20] or -crelu_resnet20.'
#
# Environment:
#   PYTHON            interpreter with torch, torchvision, timm, pytest and timm_nf installed (default: python)
#   TIMM_SDIST_CACHE  where the timm sdist is downloaded and unpacked (default: ~/.cache/timm-nf/timm-sdist)
#
# pytest runs from a temporary directory, so timm_nf must be importable by $PYTHON itself (installed,
# e.g. `pip install -e .`, or on PYTHONPATH); the current directory is not put on sys.path.
# timm's test file is only ever copied into that temporary directory, never into this repository.
set -euo pipefail

if [[ $# -lt 1 || -z $1 ]]; then
    echo "usage: $0 '<pytest -k expression>' [extra pytest args...]" >&2
    exit 2
fi
keyword=$1
shift

python=${PYTHON:-python}
if [[ $python == */* ]]; then
    # make a relative interpreter path survive the cd below (no symlink resolution: venvs need their path)
    python="$(cd "$(dirname "$python")" && pwd)/$(basename "$python")"
fi
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache=${TIMM_SDIST_CACHE:-$HOME/.cache/timm-nf/timm-sdist}

timm_version="$("$python" -c 'import timm; print(timm.__version__)')"
sdist_dir=$cache/timm-$timm_version
test_file=$sdist_dir/tests/test_models.py

# Fetch and unpack the sdist once per timm version.
if [[ ! -f $test_file ]]; then
    mkdir -p "$cache"
    archive=$cache/timm-$timm_version.tar.gz
    if [[ ! -f $archive ]]; then
        "$python" -m pip download --no-deps --no-binary :all: --dest "$cache" "timm==$timm_version"
    fi
    # Unpack beside the cache and move into place, so an interrupted run never leaves a partial tree.
    unpack_dir="$(mktemp -d "$cache/.unpack.XXXXXX")"
    tar -xzf "$archive" -C "$unpack_dir"
    rm -rf "$sdist_dir"
    mv "$unpack_dir/timm-$timm_version" "$sdist_dir"
    rm -rf "$unpack_dir"
fi
if [[ ! -f $test_file ]]; then
    echo "error: $test_file not found in the timm $timm_version sdist" >&2
    exit 1
fi

# test_models.py imports only timm (plus torch, torchvision, pytest, ...), nothing from its tests
# directory, so it is copied alone. Stop if a future timm version starts importing its siblings.
if grep -Eq '^\s*(from|import)\s+(tests\b|\.)' "$test_file"; then
    echo "error: $test_file imports from its tests directory; copy those files too" >&2
    exit 1
fi

workdir="$(mktemp -d "${TMPDIR:-/tmp}/timm-contract.XXXXXX")"
trap 'rm -rf "$workdir"' EXIT
cp "$test_file" "$workdir/test_models.py"
cp "$here/conftest.py" "$workdir/conftest.py"
# A pytest.ini pins rootdir and config to the temporary directory (no stray ini files from its
# parents) and registers timm's markers, plus `timeout` in case pytest-timeout isn't installed.
cat > "$workdir/pytest.ini" <<'INI'
[pytest]
markers =
    base
    forward
    backward
    cfg
    cfg_nonstd
    torchscript
    features
    fxforward
    fxbackward
    timeout
INI

echo "timm $timm_version: running $test_file with -k '$keyword'" >&2
cd "$workdir"
# -k=EXPR (same as -k EXPR) so that an expression starting with '-' is not read as an option.
GITHUB_ACTIONS=1 "$python" -m pytest "$workdir/test_models.py" "-k=$keyword" -p no:cacheprovider -q "$@"
