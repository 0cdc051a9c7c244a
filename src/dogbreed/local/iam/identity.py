"""The local identity of an IAM role: an access key id derived from the role ARN, so that the local
cloud can tell which role signed a call, as CloudTrail and IAM do on AWS (where a role's temporary
credentials are an `ASIA...` key id with a session token). moto accepts any key.

Lambda functions get their role's credentials in their environment (`lambda_runtime.principals`);
the local SageMaker signs a job's or model's S3 and log calls with its execution role's
(`role_client_factory`).
"""

from __future__ import annotations

import base64
import hashlib
import threading
from collections.abc import Callable
from typing import Any

import boto3
from botocore.config import Config

# Temporary (STS) credentials start with ASIA; access key ids are 20 upper-case base32 characters.
ACCESS_KEY_PREFIX = "ASIA"

ClientFactory = Callable[[str], Any]


def access_key_id_for(role_arn: str) -> str:
    digest = base64.b32encode(hashlib.sha256(role_arn.encode("utf-8")).digest()).decode("ascii")
    return ACCESS_KEY_PREFIX + digest[:16]


def is_role_key(access_key_id: str) -> bool:
    return access_key_id.startswith(ACCESS_KEY_PREFIX)


def role_credentials(role_arn: str) -> dict[str, str]:
    """The credential variables of the role's temporary credentials (dummy secrets here)."""
    key = access_key_id_for(role_arn)
    return {
        "AWS_ACCESS_KEY_ID": key,
        "AWS_SECRET_ACCESS_KEY": "local-" + key.lower(),  # nosec B105: not a secret
        "AWS_SESSION_TOKEN": "local-session-" + key.lower(),
    }


class RoleClients:
    """`RoleClients(region)(role_arn)(service)`: boto3 clients signed with the role's identity (one
    per role and service), honouring `AWS_ENDPOINT_URL` like every other client of the local cloud."""

    def __init__(self, region: str, config: Config | None = None) -> None:
        self._region = region
        self._config = config or Config(
            connect_timeout=5, read_timeout=60, retries={"max_attempts": 3, "mode": "standard"}
        )
        self._lock = threading.Lock()
        self._clients: dict[tuple[str, str], Any] = {}

    def __call__(self, role_arn: str) -> ClientFactory:
        def factory(service: str) -> Any:
            with self._lock:
                if (role_arn, service) not in self._clients:
                    credentials = role_credentials(role_arn)
                    session = boto3.session.Session(
                        aws_access_key_id=credentials["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=credentials["AWS_SECRET_ACCESS_KEY"],
                        aws_session_token=credentials["AWS_SESSION_TOKEN"],
                        region_name=self._region,
                    )
                    self._clients[(role_arn, service)] = session.client(service, config=self._config)
                return self._clients[(role_arn, service)]

        return factory
