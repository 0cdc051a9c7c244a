"""Where the local cloud keeps its state (`.local-cloud/`) and how clients find it: the state file
written by the cloud process once every server answers, and the exports that point boto3, the AWS
CLI and `dogbreed predict` at it."""

from __future__ import annotations

import functools
import json
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dogbreed import REPO_ROOT

if TYPE_CHECKING:
    import boto3

DEFAULT_STATE_DIR = REPO_ROOT / ".local-cloud"
DEFAULT_AWS_PORT = 4566
DEFAULT_API_PORT = 3000
HOST = "127.0.0.1"
REGION = "us-east-1"
# moto accepts any credentials; these only keep botocore from looking for real ones.
DUMMY_SECRET_ACCESS_KEY = "testing"  # noqa: S105  # nosec B105 # a placeholder, not a credential
DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": DUMMY_SECRET_ACCESS_KEY}
STATE_FILE = "cloud.json"
PID_FILE = "cloud.pid"
LOG_FILE = "cloud.log"

# Stack outputs exported by `dogbreed local env` (output name -> variable).
EXPORTED_OUTPUTS = {
    "DataBucketName": "DOGBREED_DATA_BUCKET",
    "InferenceBucketName": "DOGBREED_INFERENCE_BUCKET",
    "PredictionsTableName": "DOGBREED_PREDICTIONS_TABLE",
    "RunsTableName": "DOGBREED_RUNS_TABLE",
    "ModelPackageGroupName": "DOGBREED_MODEL_PACKAGE_GROUP",
    "IdempotencyTableName": "DOGBREED_IDEMPOTENCY_TABLE",
    "TrainingPipelineArn": "DOGBREED_PIPELINE_ARN",
    "EndpointName": "DOGBREED_ENDPOINT_NAME",
    "PredictS3DeadLetterQueueUrl": "DOGBREED_S3_DLQ_URL",
}


@dataclass
class CloudState:
    """What the running cloud process publishes in `<state_dir>/cloud.json`."""

    pid: int
    aws_port: int
    api_port: int
    runtime_url: str
    control_url: str
    stack_name: str
    outputs: dict[str, str] = field(default_factory=dict)
    parameters: dict[str, str] = field(default_factory=dict)

    @property
    def aws_url(self) -> str:
        return f"http://{HOST}:{self.aws_port}"

    @property
    def api_url(self) -> str:
        return f"http://{HOST}:{self.api_port}"

    def write(self, state_dir: Path) -> None:
        path = state_dir / STATE_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2), encoding="utf-8")
        tmp.replace(path)

    @classmethod
    def read(cls, state_dir: Path) -> CloudState | None:
        path = state_dir / STATE_FILE
        if not path.is_file():
            return None
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return cls(**data)

    def client(self, service: str) -> Any:
        """A boto3 client for one of this cloud's AWS APIs (SageMaker's included)."""
        with _CLIENT_LOCK:  # a boto3 session may not make clients from two threads at once
            return _shared_session().client(service, endpoint_url=self.aws_url)

    def environment(self) -> dict[str, str]:
        """Variables that point boto3 / the AWS CLI / `dogbreed predict` at this cloud."""
        env = {
            "AWS_ENDPOINT_URL": self.aws_url,
            "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": self.runtime_url,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            **DUMMY_CREDENTIALS,
            "DOGBREED_API_URL": self.api_url,
        }
        for output, variable in EXPORTED_OUTPUTS.items():
            if output in self.outputs:
                env[variable] = self.outputs[output]
        return env

    def profile(self) -> dict[str, str]:
        """An AWS CLI profile for this cloud: the AWS APIs' URL, its region and the placeholder keys."""
        return {
            "region": REGION,
            "endpoint_url": self.aws_url,
            "aws_access_key_id": DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            "aws_secret_access_key": DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        }


def shell_exports(env: dict[str, str]) -> str:
    import shlex

    return "\n".join(f"export {key}={shlex.quote(value)}" for key, value in env.items())


_CLIENT_LOCK = threading.Lock()


@functools.cache
def _shared_session() -> boto3.session.Session:
    """The session `CloudState.client` makes its clients from: a new session parses the service
    models again, which made each poll of a wait loop cost a model load."""
    return local_session()


def local_session() -> boto3.session.Session:
    """A boto3 session for the local cloud: its region and the placeholder credentials it accepts
    (they only keep botocore from looking for real ones). Clients still need `endpoint_url`."""
    import boto3

    return boto3.session.Session(
        aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        region_name=REGION,
    )
