"""The README's set-up claims: `make demo` and `make test` each set up both virtual environments, so
the README's `sam build` works after either (checked on make's dry run, nothing is installed)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from dogbreed import REPO_ROOT


def dry_run(target: str, tmp_path: Path) -> list[str]:
    # -B: every target out of date, as in a fresh clone; -n: print the commands, run nothing.
    result = subprocess.run(
        ["make", "-n", "-B", target, f"VENV={tmp_path / 'venv'}", f"SAM_VENV={tmp_path / 'venv-sam'}"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout.splitlines()


@pytest.mark.parametrize(("target", "last"), [("demo", "dogbreed local demo"), ("test", "bin/pytest")])
def test_the_target_creates_the_sam_cli_environment_before_it_runs(
    tmp_path: Path, target: str, last: str
) -> None:
    commands = dry_run(target, tmp_path)

    sam_install = next(i for i, line in enumerate(commands) if "aws-sam-cli==" in line)
    runs = next(i for i, line in enumerate(commands) if last in line)
    assert f"{tmp_path / 'venv-sam'}/bin/pip install" in commands[sam_install]
    assert sam_install < runs
