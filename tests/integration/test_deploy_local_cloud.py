"""`dogbreed deploy` against the local cloud, run as a user runs it (the real commands in a shell
configured by `dogbreed local env`):

- `dogbreed deploy --check` with AWS_ENDPOINT_URL pointing at the cloud prints the preflight table:
  what the local cloud can answer is checked, what it does not emulate is named as such;
- `dogbreed deploy --local`, then a synthetic dataset uploaded as the printed next step says
  (every file under datasets/<id>/, manifest.json last), reaches an InService endpoint that answers
  POST /predictions, with nothing else done by hand.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from dogbreed.local.cloud.lifecycle import running_state
from dogbreed.local.cloud.state import CloudState, local_session
from dogbreed.packaging import source_tarball
from dogbreed.stack_deploy import split_s3_uri
from tests.support.local_cloud import TINY_PIPELINE, local_cloud
from tests.support.waiting import wait_for

pytestmark = pytest.mark.slow

DATASET_ID = "deployed-by-cli"
TERMINAL = frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"})


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, CloudState]]:
    state_dir = tmp_path_factory.mktemp("local-cloud")
    with local_cloud(state_dir) as state:
        yield state_dir, state


def _shell(state: CloudState) -> dict[str, str]:
    """A shell after `eval "$(dogbreed local env)"`."""
    return {**os.environ, **state.environment()}


def _dogbreed(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "dogbreed", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=300, check=False)


def _rows(table: str) -> dict[str, str]:
    return {
        line.split("  ")[0]: line.rstrip() for line in table.splitlines() if line and not line.startswith(" ")
    }


def test_check_on_the_local_cloud_names_what_it_does_not_emulate(cloud: tuple[Path, CloudState]) -> None:
    state_dir, state = cloud

    result = _dogbreed("deploy", "--check", "--state-dir", str(state_dir), env=_shell(state))

    print(result.stdout)  # the table, for `pytest -s`
    assert result.returncode == 0, result.stderr
    rows = _rows(result.stdout)
    assert rows["stack name"].endswith("OK") and rows["region"].endswith("OK")
    assert rows["Lambda concurrency"].endswith("UNVERIFIED")
    assert "not emulated by the local cloud (lambda:GetAccountSettings" in result.stdout
    assert "not emulated by the local cloud (ecr:DescribeImages" in result.stdout
    assert "not emulated by the local cloud (servicequotas:ListAWSDefaultServiceQuotas" in result.stdout
    assert "Traceback" not in result.stderr


def _execution(sfn: Any, state_machine: str, after: float) -> str | None:
    for item in sfn.list_executions(stateMachineArn=state_machine)["executions"]:
        if item["startDate"].timestamp() >= after:
            return str(item["executionArn"])
    return None


def _jpeg(path: Path) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.open(path).convert("RGB").save(buffer, format="JPEG")
    return buffer.getvalue()


@pytest.mark.e2e
@pytest.mark.timeout(900)
def test_deploy_then_a_dataset_upload_reaches_a_serving_endpoint(
    cloud: tuple[Path, CloudState], tmp_path: Path
) -> None:
    state_dir, state = cloud

    # When: the stack is deployed with the command, and a dataset uploaded as its next step says
    deployed = _dogbreed(
        "deploy", "--local", "--state-dir", str(state_dir), "--parameter-overrides", *TINY_PIPELINE
    )
    print(deployed.stdout)
    assert deployed.returncode == 0, deployed.stderr
    assert "Next: upload a dataset" in deployed.stdout
    current = running_state(state_dir)
    assert current is not None
    outputs = current.outputs
    version = source_tarball().version
    assert current.parameters["TrainingCodeVersion"] == version
    s3 = local_session().client("s3", endpoint_url=state.aws_url)
    bucket, key = split_s3_uri(outputs["TrainingCodeS3Uri"])
    assert key == f"code/{version}/sourcedir.tar.gz"
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == source_tarball().data

    dataset = tmp_path / "dataset"
    synth = _dogbreed(
        "data", "synth", "--out", str(dataset), "--classes", "3", "--per-class", "16", "--size", "48",
        "--dataset-id", DATASET_ID,
    )  # fmt: skip
    assert synth.returncode == 0, synth.stderr
    uploaded_at = time.time() - 1
    files = sorted(path for path in dataset.rglob("*") if path.is_file())
    for path in sorted(files, key=lambda path: path.name == "manifest.json"):  # manifest.json last
        s3.upload_file(
            str(path), outputs["DataBucketName"], f"datasets/{DATASET_ID}/{path.relative_to(dataset)}"
        )

    # Then: the pipeline the manifest started deploys the endpoint ...
    sfn = local_session().client("stepfunctions", endpoint_url=state.aws_url)
    arn = wait_for(
        lambda: _execution(sfn, outputs["TrainingPipelineArn"], uploaded_at),
        timeout=90,
        what="the execution the manifest starts",
    )
    described = wait_for(
        lambda: (lambda d: d if d["status"] in TERMINAL else None)(sfn.describe_execution(executionArn=arn)),
        timeout=720,
        what="the pipeline to end",
        interval=2.0,
    )
    output = json.loads(described.get("output") or "{}")
    assert described["status"] == "SUCCEEDED" and output.get("outcome") == "deployed", (
        f"{described['status']}: {json.dumps(output)[:1500]} {described.get('error', '')} "
        f"{str(described.get('cause', ''))[:1500]}"
    )
    sagemaker = local_session().client("sagemaker", endpoint_url=state.aws_url)
    endpoint = sagemaker.describe_endpoint(EndpointName=outputs["EndpointName"])
    assert endpoint["EndpointStatus"] == "InService"

    # ... which classifies an image through the HTTP API
    image = next((dataset / "test").rglob("*.jpg"))
    response = httpx.post(
        f"{state.api_url}/predictions",
        content=_jpeg(image),
        headers={"Content-Type": "image/jpeg"},
        timeout=60,
    )
    assert response.status_code == 201, response.text
    assert response.json()["predictions"][0]["breed"]
