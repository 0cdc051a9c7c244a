"""The reliability suites' shared local cloud: template.yaml deployed, the tiny model serving as the
stack's endpoint. One cloud per session keeps `make test` short; every suite leaves it as it found it
(faults cleared, endpoint InService).

Scale: `make test` runs each suite small; `make reliability` sets DOGBREED_RELIABILITY=full.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from dogbreed.local.cloud.model_deploy import deploy_model_dir
from dogbreed.local.cloud.state import CloudState, local_session
from tests.integration.local_cloud_support import local_cloud

FULL_SCALE = os.environ.get("DOGBREED_RELIABILITY", "").strip().lower() == "full"


def scaled(small: int, full: int) -> int:
    """`small` in make test, `full` under make reliability."""
    return full if FULL_SCALE else small


@dataclass
class CloudWorld:
    state: CloudState
    state_dir: Path
    session: boto3.session.Session

    @property
    def outputs(self) -> dict[str, str]:
        return self.state.outputs

    @property
    def api_url(self) -> str:
        return self.state.api_url

    def client(self, service: str) -> Any:
        return self.session.client(service, endpoint_url=self.state.aws_url)


@pytest.fixture(scope="session")
def cloud_world(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CloudWorld]:
    state_dir = tmp_path_factory.mktemp("reliability-cloud")
    # The production URL policy: the hostile corpus's loopback URLs must be refused, not fetched.
    with local_cloud(state_dir, loopback_urls=False) as state:
        deploy_model_dir(state, tiny_model_dir, name="dogbreed-tiny")
        yield CloudWorld(state=state, state_dir=state_dir, session=local_session())
