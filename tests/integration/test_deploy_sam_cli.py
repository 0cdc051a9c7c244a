"""What `dogbreed deploy` hands the SAM CLI reads back, by the SAM CLI's own parser, as the parameters
it meant: samconfig.toml's environment, values with spaces and URLs, and the code version. The SAM
CLI is the project's (`.venv-sam`, from `make sam-install`) or $DOGBREED_SAM_CLI, as the deploy finds
it; its parser runs in its own interpreter."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from dogbreed.stack_deploy import find_sam, format_overrides
from dogbreed.stack_target import samconfig_overrides

PARSE = """
import json, sys
from samcli.cli.types import CfnParameterOverridesType
print(json.dumps(CfnParameterOverridesType().convert((sys.argv[1],), None, None)))
"""


def _sam_python() -> Path:
    sam = Path(find_sam())
    python = sam.parent / "python"
    if not python.is_file():
        pytest.fail(
            f"{sam} has no interpreter beside it: run `make sam-install` (or point DOGBREED_SAM_CLI at one)"
        )
    return python


@pytest.mark.parametrize("environment", ["default", "prod"])
def test_the_sam_cli_parses_the_overrides_the_deploy_passes(environment: str) -> None:
    overrides = {
        **samconfig_overrides(environment),
        "AlarmEmail": "ops team@example.com",
        "CorsAllowOrigin": "https://app.example.com",
        "TrainingCodeVersion": "5dd445e9e4a13705",
    }

    parsed = subprocess.run(
        [str(_sam_python()), "-c", PARSE, format_overrides(overrides)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env={"SAM_CLI_TELEMETRY": "0", "PATH": ""},
    )

    assert json.loads(parsed.stdout) == overrides
