"""What the repository commits names no place on the machine that wrote it.

Run records, published folders and documents go to other machines (a clone, the Hugging Face Hub): a path such as
the training checkout's or a temporary folder's means nothing there and tells where someone worked. Every text
file git tracks is scanned with the pattern of issue 17 (`git grep -IE` of it over `hub` and `docs` was the
original check).
"""
import subprocess
from pathlib import Path
from typing import List

import pytest
from script_helpers import MACHINE_PATH, REPO


def tracked_text_files() -> List[Path]:
    """Files git tracks in this checkout that are text (binary files, which hold NUL bytes, are skipped)."""
    proc = subprocess.run(['git', 'ls-files', '-z'], cwd=REPO, capture_output=True)
    if proc.returncode != 0:
        pytest.skip('not a git checkout (e.g. an unpacked sdist): nothing committed to scan')
    files = []
    for name in proc.stdout.decode().split('\0'):
        path = REPO / name
        if name and path.is_file():
            with open(path, 'rb') as f:
                if b'\0' not in f.read(8192):  # git's own test for binary content
                    files.append(path)
    return files


def machine_paths(path: Path) -> List[str]:
    """'file:line: text' for each line of `path` that names a machine path."""
    text = path.read_text(encoding='utf-8', errors='replace')
    hits = []
    for match in MACHINE_PATH.finditer(text):
        line = text.count('\n', 0, match.start()) + 1
        hits.append(f'{path.relative_to(REPO)}:{line}: {text.splitlines()[line - 1].strip()[:120]}')
    return hits


def test_the_pattern_finds_machine_paths_and_nothing_else():
    r = '/'  # the samples are built, so that this committed file does not itself name the paths it tests
    samples = {
        f'config: {r}work/main/train/recipes/digits.yaml\n': 1,
        f'"checkpoint": "{r}tmp/run/last.pth.tar"\n': 1,
        f'see {r}home/user/x and {r}root/y\n': 2,
        f"timm.create_model('local-dir:{r}work/x')\n": 1,
        'config: train/recipes/digits.yaml\noutput: output/tmp/run\nfile.tmp/x /usr/share/datasets/\n': 0,
    }
    for text, count in samples.items():
        assert len(MACHINE_PATH.findall(text)) == count, text


def test_no_committed_text_file_names_a_machine_path():
    files = tracked_text_files()
    assert len(files) > 100  # the scan sees the repository (sources, records, cards), not an empty list
    hits = [hit for path in files for hit in machine_paths(path)]
    assert not hits, f'{len(hits)} machine paths in committed files:\n' + '\n'.join(hits[:20])
