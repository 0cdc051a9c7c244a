"""How `dogbreed` ends: `--version`, an expected failure as one line on stderr with status 1 (the
traceback only with --debug), a usage error with status 2."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import pytest
from botocore.exceptions import NoCredentialsError

from dogbreed.cli import main


def test_version_prints_the_installed_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])

    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"dogbreed {importlib.metadata.version('dogbreed')}"


@pytest.fixture
def no_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


@pytest.mark.usefixtures("no_credentials")
def test_an_aws_failure_is_one_line_on_stderr_and_status_1(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["batch", "status", "dogbreed-batch-1"])

    err = capsys.readouterr().err
    assert status == 1
    assert err == "dogbreed batch: error: Unable to locate credentials\n"


@pytest.mark.usefixtures("no_credentials")
@pytest.mark.parametrize(
    "argv",
    [
        ["--debug", "batch", "status", "dogbreed-batch-1"],
        ["batch", "status", "dogbreed-batch-1", "--debug"],
        ["--debug", "batch", "status", "dogbreed-batch-1", "--deb"],  # twice, and abbreviated
    ],
)
def test_debug_anywhere_shows_the_failure_as_it_was_raised(argv: list[str]) -> None:
    with pytest.raises(NoCredentialsError):
        main(argv)


def test_a_usage_error_is_status_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["predict"])

    assert exited.value.code == 2
    assert "the following arguments are required: IMAGE|URL" in capsys.readouterr().err
