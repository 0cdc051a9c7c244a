"""AWS plumbing shared by the local SageMaker backend: the botocore service model (request validation
and error shapes), ARNs, clients and S3 URI helpers."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from typing import Any

import boto3
import botocore.session
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.validate import ParamValidator

DEFAULT_REGION = "us-east-1"
# moto's default account; the local cloud has no other.
ACCOUNT_ID = "123456789012"

ClientFactory = Callable[[str], Any]


def default_client_factory(region: str = DEFAULT_REGION) -> ClientFactory:
    """boto3 clients that honour `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_<SERVICE>` (the local cloud)."""
    session = boto3.session.Session(region_name=region)
    config = Config(connect_timeout=5, read_timeout=60, retries={"max_attempts": 3, "mode": "standard"})
    cache: dict[str, Any] = {}

    def factory(service: str) -> Any:
        if service not in cache:
            cache[service] = session.client(service, config=config)
        return cache[service]

    return factory


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def sagemaker_arn(resource: str, name: str, region: str = DEFAULT_REGION) -> str:
    # SageMaker lower-cases resource names inside ARNs.
    return f"arn:aws:sagemaker:{region}:{ACCOUNT_ID}:{resource}/{name.lower()}"


def api_error(operation: str, code: str, message: str, http_status: int = 400) -> ClientError:
    """The ClientError a boto3 sagemaker client raises for the same failure."""
    return ClientError(
        {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": http_status},
        },
        operation,
    )


def not_found(operation: str, message: str = "Requested resource not found.") -> ClientError:
    # SageMaker reports unknown names as ValidationException, not ResourceNotFound, for Describe*.
    return api_error(operation, "ValidationException", message)


@functools.cache
def _service_model(service: str) -> Any:
    return botocore.session.get_session().get_service_model(service)


def validate_request(operation: str, params: dict[str, Any], service: str = "sagemaker") -> None:
    """Validate a request against botocore's input shape, as a real client would before sending."""
    model = _service_model(service)
    shape = model.operation_model(operation).input_shape
    report = ParamValidator().validate(params, shape)
    if report.has_errors():
        raise api_error(operation, "ValidationException", report.generate_report())


def error_shape_names(operation: str, service: str = "sagemaker-runtime") -> set[str]:
    return {shape.name for shape in _service_model(service).operation_model(operation).error_shapes}


def parse_s3_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise ValueError(f"not an s3:// URI: {uri!r}")
    bucket, _, key = uri[len("s3://") :].partition("/")
    if not bucket:
        raise ValueError(f"s3 URI without a bucket: {uri!r}")
    return bucket, key


def join_s3(uri: str, *parts: str) -> str:
    base = uri.rstrip("/")
    return "/".join([base, *(part.strip("/") for part in parts)])
