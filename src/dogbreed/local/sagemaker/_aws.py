"""AWS plumbing shared by the local SageMaker backend: the botocore service model (request validation
and error shapes), ARNs, clients, List* semantics and S3 URI helpers."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
import botocore
import botocore.session
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.validate import ParamValidator

DEFAULT_REGION = "us-east-1"
# moto's default account; the local cloud has no other.
ACCOUNT_ID = "123456789012"

ClientFactory = Callable[[str], Any]
# role ARN -> the clients that role's calls are signed with (SageMaker acts with a job's or model's
# execution role); the default is the backend's own clients for every role.
RoleClientFactory = Callable[[str], ClientFactory]


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
    # SageMaker reports most unknown names as ValidationException, not the modelled ResourceNotFound
    # (DescribeTrainingJob included: aws/aws-sdk#165); tuning jobs are the exception.
    return api_error(operation, "ValidationException", message)


def could_not_find(
    operation: str, kind: str, resource: str, name: str, region: str = DEFAULT_REGION
) -> ClientError:
    """`Could not find endpoint "arn:..."`: how SageMaker names a missing model, config or endpoint."""
    return not_found(operation, f'Could not find {kind} "{sagemaker_arn(resource, name, region)}".')


@functools.cache
def _service_model(service: str) -> Any:
    return botocore.session.get_session().get_service_model(service)


@functools.cache
def operation_name(method: str, service: str = "sagemaker") -> str:
    """botocore's operation name for a client method name (`create_model` -> `CreateModel`)."""
    names = {botocore.xform_name(name): name for name in _service_model(service).operation_names}
    return names[method]


def validate_request(operation: str, params: dict[str, Any], service: str = "sagemaker") -> None:
    """Validate a request against botocore's input shape, as a real client would before sending."""
    model = _service_model(service)
    shape = model.operation_model(operation).input_shape
    report = ParamValidator().validate(params, shape)
    if report.has_errors():
        raise api_error(operation, "ValidationException", report.generate_report())


@dataclass(frozen=True)
class Listing:
    """One List* operation's filters, sort and pages over summaries (dicts in the response shape)."""

    key: str  # the response member: "TrainingJobSummaries"
    name: str  # the name field NameContains and SortBy=Name use: "TrainingJobName"
    status: str = ""  # the status field StatusEquals and SortBy=Status use
    sort_by: str = "CreationTime"  # the documented defaults
    order: str = "Descending"
    page_size: int = 10

    def page(
        self,
        summaries: list[dict[str, Any]],
        request: dict[str, Any],
        sort: Callable[[dict[str, Any]], Any] | None = None,
    ) -> dict[str, Any]:
        contains = str(request.get("NameContains", "")).lower()
        summaries = [s for s in summaries if contains in s[self.name].lower()]
        if "StatusEquals" in request:
            summaries = [s for s in summaries if s[self.status] == request["StatusEquals"]]
        for field in ("CreationTime", "LastModifiedTime"):
            if f"{field}After" in request:
                summaries = [s for s in summaries if s[field] > request[f"{field}After"]]
            if f"{field}Before" in request:
                summaries = [s for s in summaries if s[field] < request[f"{field}Before"]]
        if sort is None:
            fields = {"Name": self.name, "Status": self.status, "CreationTime": "CreationTime"}
            field = fields[request.get("SortBy", self.sort_by)]
            sort = lambda summary: summary[field]  # noqa: E731
        summaries.sort(key=sort, reverse=request.get("SortOrder", self.order) == "Descending")
        start = int(request.get("NextToken") or 0)
        end = start + int(request.get("MaxResults", self.page_size))
        out: dict[str, Any] = {self.key: summaries[start:end]}
        if end < len(summaries):
            out["NextToken"] = str(end)
        return out


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
