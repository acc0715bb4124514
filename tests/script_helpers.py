"""Helpers shared by the tests of the scripts in train/ and hub/: environments, in-process runs, error checks."""
import importlib.util
import logging
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Dict, List

REPO = Path(__file__).resolve().parents[1]

# A path starting at a machine's top-level folder for work, temporary files or home directories (issue 17's pattern);
# not preceded by a name character, so that `output/tmp/x` or `a.tmp/` do not count.
MACHINE_PATH = re.compile(r'(^|[^A-Za-z0-9_.])/(work|tmp|root|home)/', re.MULTILINE)


def script_env(**extra: str) -> Dict[str, str]:
    """The environment of a script subprocess: this checkout importable, one thread (tiny models are fastest that
    way and parallel tests stay fair), no Hub token, plus `extra`."""
    env = dict(os.environ)
    env['PYTHONPATH'] = str(REPO) + os.pathsep + env.get('PYTHONPATH', '')
    env['OMP_NUM_THREADS'] = '1'
    env.pop('HF_TOKEN', None)
    env.update(extra)
    return env


def run_script(
        script: Path, args: List[str], cwd: Path, timeout: float = 240, **env: str,
) -> subprocess.CompletedProcess:
    """Run `python script args...` in a fresh interpreter."""
    return subprocess.run([sys.executable, str(script), *args], cwd=cwd, env=script_env(**env), capture_output=True,
                          text=True, timeout=timeout)


def load_script(path: Path) -> ModuleType:
    """Import a script as a module (its `main(argv)` is what `python script ...` runs)."""
    spec = importlib.util.spec_from_file_location(f'_script_{path.parent.name}_{path.stem}', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def call_main(script: Path, args: List[str], capsys) -> subprocess.CompletedProcess:
    """A script's main() in this process: bad-input checks need no fresh interpreter (about 4 s saved each)."""
    root = logging.getLogger()
    handlers = list(root.handlers)
    try:
        rc = load_script(script).main(args)
    finally:
        for handler in root.handlers[:]:  # main() adds console handlers bound to this test's captured stream
            if handler not in handlers:
                root.removeHandler(handler)
    captured = capsys.readouterr()
    return subprocess.CompletedProcess(args, rc, captured.out, captured.err)


def assert_one_line_error(proc: subprocess.CompletedProcess, *phrases: str) -> str:
    """Non-zero exit, no traceback, exactly one `error:` line containing every phrase; returns that line."""
    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert 'Traceback' not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith('error:')]
    assert len(errors) == 1, proc.stderr
    for phrase in phrases:
        assert phrase in errors[0], errors[0]
    return errors[0]


def assert_no_machine_paths(text: str, *places: Path) -> None:
    """`text` (a record a script wrote) names no machine path and none of `places` (this checkout, a test's
    temporary folder), wherever those happen to be."""
    match = MACHINE_PATH.search(text)
    assert match is None, text[max(0, match.start() - 200):match.end() + 200]
    for place in places:
        assert str(place) not in text, f'{place} in:\n{text[:3000]}'
