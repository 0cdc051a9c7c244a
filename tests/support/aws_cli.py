"""The AWS CLI the tests drive: the Makefile's pinned one (.venv-aws, exported as DOGBREED_AWS_CLI by
`make test`), or an `aws` on PATH when pytest runs on its own. Missing, it fails the test: never skips."""

from __future__ import annotations

import os
import shutil

import pytest

AWS_CLI_ENV = "DOGBREED_AWS_CLI"


def aws_cli() -> str:
    configured = os.environ.get(AWS_CLI_ENV, "").strip()
    found = configured if configured and os.access(configured, os.X_OK) else shutil.which("aws")
    if found is None:
        pytest.fail(
            f"no AWS CLI: {AWS_CLI_ENV}={configured or '(unset)'} and no `aws` on PATH; "
            "`make aws-cli-install` installs the pinned one in .venv-aws",
            pytrace=False,
        )
    return found
