"""Helpers shared by the tests of the scripts in train/ and hub/: environments, in-process runs, error checks."""
import contextlib
import fcntl
import importlib.util
import io
import logging
import os
import pickle
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Callable, Dict, List, TypeVar

import pytest

REPO = Path(__file__).resolve().parents[1]
T = TypeVar('T')

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


def _main_in_process(script: Path, args: List[str]) -> int:
    """`script`'s main(args) in this process; its exit status."""
    root = logging.getLogger()
    handlers = list(root.handlers)
    try:
        return load_script(script).main(args)
    except SystemExit as e:  # the status and message the script's process would exit with
        if e.code is None or isinstance(e.code, int):
            return e.code or 0
        print(e.code, file=sys.stderr)  # SystemExit('error: ...'): the interpreter prints it and exits with 1
        return 1
    finally:
        for handler in root.handlers[:]:  # main() adds console handlers bound to this test's captured stream
            if handler not in handlers:
                root.removeHandler(handler)


def call_main(script: Path, args: List[str], capsys) -> subprocess.CompletedProcess:
    """A script's main() in this process: runs that need no fresh interpreter (no environment read at import, no
    real exit status) save its start, about 5 s of CPU each (importing timm)."""
    rc = _main_in_process(script, args)
    captured = capsys.readouterr()
    return subprocess.CompletedProcess(args, rc, captured.out, captured.err)


def run_main(script: Path, args: List[str], cwd: Path) -> subprocess.CompletedProcess:
    """`call_main` for module fixtures, which have no capsys: output caught by swapping sys.stdout and sys.stderr,
    run from `cwd` as `run_script` runs it."""
    out, err = io.StringIO(), io.StringIO()
    before = os.getcwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = _main_in_process(script, args)
    finally:
        os.chdir(before)
    return subprocess.CompletedProcess(args, rc, out.getvalue(), err.getvalue())


def shared_by_workers(tmp_path_factory: pytest.TempPathFactory, name: str, produce: Callable[[Path], T]) -> T:
    """`produce(folder)` once per test session, for module fixtures that run scripts.

    xdist runs a module fixture once in each worker that runs one of its tests, and spreads a module's tests over
    both workers of `pytest -n 2`: the expensive ones ran twice. Here the first worker to ask runs `produce` in a
    folder of the session's temporary folder, which the workers share, and a worker asking meanwhile waits for its
    result (a file lock) instead of computing it again. The result must pickle; its files must be left unchanged.
    """
    base = tmp_path_factory.getbasetemp()
    if os.environ.get('PYTEST_XDIST_WORKER'):
        base = base.parent  # each worker's folder is in the session's
    folder, result = base / f'shared-{name}', base / f'shared-{name}.pickle'
    with open(base / f'shared-{name}.lock', 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed
        if result.exists():
            return pickle.loads(result.read_bytes())
        shutil.rmtree(folder, ignore_errors=True)  # what a failed attempt left
        folder.mkdir()
        value = produce(folder)
        result.write_bytes(pickle.dumps(value))
        return value


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
