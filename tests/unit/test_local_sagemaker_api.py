"""The local SageMaker's wire protocol, without processes: request and response bodies as botocore writes
and reads them, the json protocol's error envelope, and a boto3 client against the WSGI middleware
(served in a thread) with the backend's model, config and tag stores behind it."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ParamValidationError
from botocore.parsers import create_parser
from botocore.serialize import create_serializer
from botocore.validate import ParamValidator
from werkzeug.serving import make_server

from dogbreed.local.sagemaker import LocalSageMaker
from dogbreed.local.sagemaker.api import SageMakerApi, deserialize, error_response, handle, serialize
from dogbreed.local.sagemaker.training import TrainingJob
from tests.integration.local_sagemaker_support import ROLE, training_request

MODEL = botocore.session.get_session().get_service_model("sagemaker")
CREATED = dt.datetime(2025, 3, 1, 12, 30, 15, 250000, tzinfo=dt.UTC)


def _parsed(status: int, headers: list[tuple[str, str]], body: bytes, operation: str) -> dict[str, Any]:
    """What botocore's json parser makes of an answer to `operation`."""
    response = {"status_code": status, "headers": dict(headers), "body": body}
    parsed: dict[str, Any] = create_parser("json").parse(
        response, MODEL.operation_model(operation).output_shape
    )
    return parsed


def test_a_request_botocore_serializes_reads_back_as_its_parameters() -> None:
    params = {"NameContains": "hpo", "CreationTimeAfter": CREATED, "MaxResults": 5, "SortOrder": "Descending"}
    operation = MODEL.operation_model("ListTrainingJobs")
    body = create_serializer("json").serialize_to_request(params, operation)["body"]

    assert deserialize(body, operation.input_shape) == params


def test_a_response_is_read_by_botocore_as_the_backend_returned_it() -> None:
    # Given a DescribeEndpoint answer with timestamps and a member the output shape does not model
    result = {
        "EndpointName": "dogs",
        "EndpointArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/dogs",
        "EndpointConfigName": "dogs-1",
        "EndpointStatus": "InService",
        "CreationTime": CREATED,
        "LastModifiedTime": CREATED,
        "LocalOnly": "not in the model",
    }
    body = serialize(result, MODEL.operation_model("DescribeEndpoint").output_shape)

    # Then the wire has epoch seconds, and botocore reads back the modelled members
    assert json.loads(body)["CreationTime"] == pytest.approx(CREATED.timestamp())
    parsed = _parsed(200, [], body, "DescribeEndpoint")
    parsed.pop("ResponseMetadata")
    assert parsed == {key: value for key, value in result.items() if key != "LocalOnly"}


def test_an_error_is_the_json_protocol_envelope_botocore_raises() -> None:
    status, headers, body = error_response("ValidationException", 'Could not find endpoint "x".', 400)

    parsed = _parsed(status, headers, body, "DescribeEndpoint")

    assert json.loads(body) == {"__type": "ValidationException", "message": 'Could not find endpoint "x".'}
    assert parsed["Error"] == {"Code": "ValidationException", "Message": 'Could not find endpoint "x".'}
    assert parsed["ResponseMetadata"]["HTTPStatusCode"] == 400


class _Backend:
    """The backend's dispatch interface with one answer per test."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.calls: list[dict[str, Any]] = []

    @staticmethod
    def operations() -> frozenset[str]:
        return frozenset({"describe_model", "list_tags"})

    @staticmethod
    def answers(operation: str, request: dict[str, Any]) -> bool:
        return operation != "list_tags" or ":model/" in request["ResourceArn"]

    def describe_model(self, **request: Any) -> dict[str, Any]:
        self.calls.append(request)
        if isinstance(self.answer, Exception):
            raise self.answer
        return dict(self.answer)


def test_operations_the_backend_does_not_answer_are_left_to_moto() -> None:
    backend = _Backend({})
    arn = json.dumps(
        {"ResourceArn": "arn:aws:sagemaker:us-east-1:123456789012:model-package-group/g"}
    ).encode()

    assert handle(backend, "CreateModelPackageGroup", b"{}") is None
    assert handle(backend, "ListTags", arn) is None
    assert backend.calls == []


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (
            ClientError({"Error": {"Code": "ValidationException", "Message": "m"}}, "DescribeModel"),
            (400, "ValidationException"),
        ),
        (
            ClientError(
                {
                    "Error": {"Code": "ThrottlingException", "Message": "m"},
                    "ResponseMetadata": {"HTTPStatusCode": 429},
                },
                "DescribeModel",
            ),
            (429, "ThrottlingException"),
        ),
        (RuntimeError("a bug"), (500, "InternalFailure")),
    ],
)
def test_backend_failures_keep_their_code_and_status(answer: Exception, expected: tuple[int, str]) -> None:
    status, _, body = handle(_Backend(answer), "DescribeModel", b'{"ModelName": "m"}') or (0, [], b"")

    assert (status, json.loads(body)["__type"]) == expected


def test_a_body_that_is_not_the_shape_is_a_serialization_error() -> None:
    status, _, body = handle(_Backend({}), "DescribeModel", b'["ModelName"]') or (0, [], b"")

    assert (status, json.loads(body)["__type"]) == (400, "SerializationException")


def test_a_completed_training_job_is_described_with_every_required_member() -> None:
    request = training_request("job", sourcedir="s3://b/s.tar.gz", channel_uri="s3://b/d")
    job = TrainingJob(request=request, arn="arn:aws:sagemaker:us-east-1:123456789012:training-job/job")
    job.transition("Starting")
    job.model_artifacts = "s3://dogbreed-data/models/job/output/model.tar.gz"
    job.finish("Completed", "Completed")
    shape = MODEL.operation_model("DescribeTrainingJob").output_shape

    report = ParamValidator().validate(job.describe(), shape)

    assert not report.has_errors(), report.generate_report()


# --- a boto3 client against the middleware ----------------------------------------------------------


def _moto_stand_in(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("418 I'm a teapot", [("Content-Type", "text/plain")])
    return [b"moto"]


@pytest.fixture(scope="module")
def sagemaker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    state = Path(tmp_path_factory.mktemp("api"))
    with LocalSageMaker(state, clients=lambda _: None, start_runtime=False, publish_logs=False) as backend:
        server = make_server("127.0.0.1", 0, SageMakerApi(_moto_stand_in, backend), threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield boto3.client(
                "sagemaker",
                endpoint_url=f"http://127.0.0.1:{server.server_port}",
                region_name="us-east-1",
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
                config=Config(retries={"max_attempts": 1}),
            )
        finally:
            server.shutdown()
            thread.join(timeout=10)


def _model(sagemaker: Any, name: str, tags: list[dict[str, str]] | None = None) -> str:
    arn: str = sagemaker.create_model(
        ModelName=name,
        PrimaryContainer={"Image": "pytorch-inference", "ModelDataUrl": "s3://bucket/model.tar.gz"},
        ExecutionRoleArn=ROLE,
        **({"Tags": tags} if tags else {}),
    )["ModelArn"]
    return arn


def test_boto3_creates_lists_and_describes_models(sagemaker: Any) -> None:
    arn = _model(sagemaker, "wire-model")

    described = sagemaker.describe_model(ModelName="wire-model")
    listed = sagemaker.list_models(NameContains="wire")["Models"]

    assert described["ModelArn"] == arn and described["CreationTime"].tzinfo is not None
    assert [model["ModelName"] for model in listed] == ["wire-model"]


def test_tags_given_at_create_time_and_by_add_tags_are_listed_by_arn(sagemaker: Any) -> None:
    arn = _model(sagemaker, "tagged-model", tags=[{"Key": "stack", "Value": "dogbreed"}])

    sagemaker.add_tags(ResourceArn=arn, Tags=[{"Key": "stage", "Value": "test"}])
    sagemaker.delete_tags(ResourceArn=arn, TagKeys=["stack"])

    assert sagemaker.list_tags(ResourceArn=arn)["Tags"] == [{"Key": "stage", "Value": "test"}]


def test_a_missing_endpoint_is_a_validation_exception_as_on_aws(sagemaker: Any) -> None:
    with pytest.raises(ClientError) as missing:
        sagemaker.describe_endpoint(EndpointName="nowhere")

    error = missing.value.response["Error"]
    assert error["Code"] == "ValidationException"
    assert error["Message"].startswith('Could not find endpoint "arn:aws:sagemaker:us-east-1:')


def test_a_missing_tuning_job_is_the_modelled_resource_not_found(sagemaker: Any) -> None:
    with pytest.raises(sagemaker.exceptions.ResourceNotFound):
        sagemaker.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName="nowhere")


def test_a_bad_field_is_refused_by_botocore_before_it_is_sent(sagemaker: Any) -> None:
    with pytest.raises(ParamValidationError):
        sagemaker.describe_endpoint(EndpointName=3)


def test_a_request_botocore_did_not_check_gets_the_servers_validation_exception(sagemaker: Any) -> None:
    unchecked = boto3.client(
        "sagemaker",
        endpoint_url=sagemaker.meta.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(parameter_validation=False, retries={"max_attempts": 1}),
    )

    with pytest.raises(ClientError) as invalid:
        unchecked.create_endpoint(EndpointName="no-config")

    assert invalid.value.response["Error"]["Code"] == "ValidationException"
    assert "EndpointConfigName" in invalid.value.response["Error"]["Message"]
    assert invalid.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_other_sagemaker_operations_reach_moto(sagemaker: Any) -> None:
    with pytest.raises(ClientError) as passed_on:
        sagemaker.list_model_package_groups()

    assert passed_on.value.response["ResponseMetadata"]["HTTPStatusCode"] == 418
