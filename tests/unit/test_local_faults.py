"""The local cloud's fault injection: the registry's budgets, the AWS middleware in front of a real
moto server app (errors botocore parses into the modeled ClientError), the runtime hook, and the CLI's
fault requests."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from starlette.testclient import TestClient

from dogbreed.local.cloud.faults import FaultRegistry, build_fault
from tests.support.credentials import FAKE_CREDENTIALS, REGION

NO_RETRIES = Config(retries={"total_max_attempts": 1, "mode": "standard"})


def test_a_counted_fault_hits_its_budget_then_is_spent() -> None:
    registry = FaultRegistry()
    fault = registry.add(build_fault({"kind": "endpoint", "error": "ThrottlingException", "count": 2}))

    taken = [registry.take_named("endpoint", "my-endpoint") for _ in range(3)]

    assert [item.id if item else None for item in taken] == [fault.id, fault.id, None]
    assert (fault.hits, fault.active) == (2, False)


def test_a_fault_until_cleared_hits_every_match_and_only_matches() -> None:
    registry = FaultRegistry()
    fault = registry.add(build_fault({"kind": "training", "resource": "hpo-", "count": None}))

    hits = [registry.take_named("training", name) for name in ("hpo-1-001", "train-1", "hpo-1-002")]
    registry.clear()

    assert [bool(hit) for hit in hits] == [True, False, True]
    assert fault.hits == 2
    assert registry.take_named("training", "hpo-1-003") is None


@pytest.mark.parametrize(
    "spec",
    [
        {"kind": "aws", "operation": "PutItem"},  # no service
        {"kind": "endpoint", "error": "Teapot"},
        {"kind": "disk"},
        {"kind": "endpoint", "count": 0},
        {"kind": "endpoint", "colour": "red"},
        {"kind": "training", "delay_seconds": "soon"},
    ],
)
def test_invalid_fault_specs_are_refused(spec: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        build_fault(spec)


# --- AWS API faults through the middleware in front of moto's server app -----------------------


@pytest.fixture(scope="module")
def moto_behind_faults() -> Iterator[tuple[str, FaultRegistry]]:
    from dogbreed.local.cloud.moto_server import MotoServer

    registry = FaultRegistry()
    server = MotoServer(host="127.0.0.1", port=0, faults=registry)
    server.start()
    try:
        yield f"http://127.0.0.1:{server.port}", registry
    finally:
        server.stop()


@pytest.fixture
def aws(moto_behind_faults: tuple[str, FaultRegistry]) -> Iterator[tuple[Any, FaultRegistry]]:
    url, registry = moto_behind_faults
    session = boto3.session.Session(
        aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        region_name=REGION,
    )

    def client(service: str) -> Any:
        return session.client(service, endpoint_url=url, config=NO_RETRIES)

    yield client, registry
    registry.clear()


def test_dynamodb_fault_is_the_json_protocol_error_for_the_matching_table_only(aws: Any) -> None:
    client, registry = aws
    dynamodb = client("dynamodb")
    for table in ("faulty-predictions", "healthy-idempotency"):
        dynamodb.create_table(
            TableName=table,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
    fault = registry.add(
        build_fault(
            {
                "kind": "aws",
                "service": "dynamodb",
                "operation": "PutItem",
                "resource": "faulty-predictions",
                "error": "ProvisionedThroughputExceededException",
            }
        )
    )

    dynamodb.put_item(TableName="healthy-idempotency", Item={"id": {"S": "a"}})
    with pytest.raises(dynamodb.exceptions.ProvisionedThroughputExceededException) as raised:
        dynamodb.put_item(TableName="faulty-predictions", Item={"id": {"S": "a"}})
    dynamodb.put_item(TableName="faulty-predictions", Item={"id": {"S": "b"}})  # the budget was one

    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert fault.hits == 1
    assert dynamodb.scan(TableName="faulty-predictions")["Count"] == 1


def test_s3_fault_is_the_rest_xml_error_for_the_operation(aws: Any) -> None:
    client, registry = aws
    s3 = client("s3")
    s3.create_bucket(Bucket="fault-bucket")
    registry.add(
        build_fault(
            {"kind": "aws", "service": "s3", "operation": "PutObject", "error": "SlowDown", "count": None}
        )
    )

    with pytest.raises(ClientError) as raised:
        s3.put_object(Bucket="fault-bucket", Key="results/a.json", Body=b"{}")
    listed = s3.list_objects_v2(Bucket="fault-bucket")  # another operation passes

    assert raised.value.response["Error"]["Code"] == "SlowDown"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    assert listed["KeyCount"] == 0


def test_query_protocol_fault_is_an_error_response(aws: Any) -> None:
    client, registry = aws
    registry.add(
        build_fault({"kind": "aws", "service": "sns", "operation": "CreateTopic", "error": "Throttling"})
    )

    with pytest.raises(ClientError) as raised:
        client("sns").create_topic(Name="alerts")

    assert raised.value.response["Error"]["Code"] == "Throttling"


def test_rest_json_fault_matches_the_operation_botocores_model_names(aws: Any) -> None:
    client, registry = aws
    fault = registry.add(
        build_fault(
            {
                "kind": "aws",
                "service": "lambda",
                "operation": "GetFunction",
                "error": "TooManyRequestsException",
            }
        )
    )

    listed = client("lambda").list_functions()  # another operation on the same service passes
    with pytest.raises(ClientError) as raised:
        client("lambda").get_function(FunctionName="predict-api")

    assert listed["Functions"] == []
    assert raised.value.response["Error"]["Code"] == "TooManyRequestsException"
    assert raised.value.operation_name == "GetFunction"
    assert fault.hits == 1


def test_cbor_protocol_fault_is_an_error_botocore_parses(aws: Any) -> None:
    client, registry = aws
    cloudwatch = client("cloudwatch")  # botocore speaks smithy-rpc-v2-cbor to CloudWatch
    registry.add(
        build_fault(
            {"kind": "aws", "service": "monitoring", "operation": "PutMetricData", "error": "Throttling"}
        )
    )

    with pytest.raises(ClientError) as raised:
        cloudwatch.put_metric_data(Namespace="DogBreed", MetricData=[{"MetricName": "m", "Value": 1.0}])

    assert raised.value.response["Error"] == {
        "Code": "Throttling",
        "Message": raised.value.response["Error"]["Message"],
    }
    assert "injected fault" in raised.value.response["Error"]["Message"]
    assert cloudwatch.list_metrics(Namespace="DogBreed")["Metrics"] == []  # nothing was stored


def test_a_request_no_model_explains_meets_only_faults_without_an_operation() -> None:
    from werkzeug.test import EnvironBuilder

    from dogbreed.local.cloud.faults import aws_fault_matches, error_response, read_request, request_protocol

    signed = {
        "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20261206/us-east-1/dynamodb/aws4_request, x",
        "X-Amz-Target": "DynamoDB_20120810.PutItem",
        "Content-Type": "application/x-amz-json-1.0",
    }
    builder = EnvironBuilder(method="POST", path="/", data=b"{not json", headers=list(signed.items()))
    environ = builder.get_environ()

    read = read_request(environ)  # the body is not the JSON it claims to be: no operation, no crash
    assert read is not None
    call, api = read
    put_item = build_fault({"kind": "aws", "service": "dynamodb", "operation": "PutItem"})
    any_call = build_fault({"kind": "aws", "service": "dynamodb"})

    assert api is None
    assert not aws_fault_matches(put_item, call, api)
    assert aws_fault_matches(any_call, call, api)
    assert error_response(any_call, request_protocol(call, api))[1][0] == (
        "Content-Type",
        "application/x-amz-json-1.0",
    )
    assert environ["wsgi.input"].read() == b"{not json"  # put back for moto


# --- the sagemaker-runtime hook --------------------------------------------------------------------


def test_endpoint_fault_answers_invoke_endpoint_then_the_endpoint_answers(tmp_path: Path) -> None:
    from dogbreed.local.sagemaker.endpoints import EndpointService
    from dogbreed.local.sagemaker.models import ModelStore
    from dogbreed.local.sagemaker.processes import ProcessRegistry
    from dogbreed.local.sagemaker.runtime import Router, build_app
    from dogbreed.local.sagemaker.tags import TagStore

    tags = TagStore()
    models = ModelStore(state_dir=tmp_path, clients=lambda _: None, tags=tags, region="us-east-1")
    endpoints = EndpointService(
        state_dir=tmp_path, models=models, processes=ProcessRegistry(), tags=tags, region="us-east-1"
    )
    router = Router(endpoints, region="us-east-1")
    router.faults = FaultRegistry()
    router.faults.add(build_fault({"kind": "endpoint", "error": "ThrottlingException", "resource": "dog"}))
    try:
        with TestClient(build_app(router)) as http:
            faulted = http.post("/endpoints/dog-endpoint/invocations", content=b"x")
            after = http.post("/endpoints/dog-endpoint/invocations", content=b"x")
    finally:
        endpoints.shutdown()

    assert (faulted.status_code, faulted.headers["x-amzn-ErrorType"]) == (429, "ThrottlingException")
    # The fault is spent: the request reaches the backend, which has no such endpoint.
    assert (after.status_code, after.headers["x-amzn-ErrorType"]) == (400, "ValidationError")


# --- the CLI -------------------------------------------------------------------------------------


def cli_args(**overrides: Any) -> argparse.Namespace:
    defaults: dict[str, Any] = {
        "kind": "aws",
        "service": "",
        "operation": "",
        "resource": "",
        "error": "",
        "status": 0,
        "message": "",
        "count": 1,
        "until_cleared": False,
        "delay": None,
    }
    return argparse.Namespace(**(defaults | overrides))


def test_cli_endpoint_down_is_service_unavailable_until_cleared() -> None:
    from dogbreed.commands.local import fault_request

    kind, fields = fault_request(cli_args(kind="endpoint-down", resource="dogbreed"))

    fault = build_fault({"kind": kind, **fields})
    assert (fault.kind, fault.error, fault.status, fault.count) == (
        "endpoint",
        "ServiceUnavailable",
        503,
        None,
    )
    assert fault.resource == "dogbreed"


def test_cli_aws_fault_request_carries_its_match_and_budget() -> None:
    from dogbreed.commands.local import fault_request

    kind, fields = fault_request(
        cli_args(service="dynamodb", operation="PutItem", resource="predictions", until_cleared=True)
    )

    fault = build_fault({"kind": kind, **fields})
    assert (fault.service, fault.operation, fault.resource) == ("dynamodb", "PutItem", "predictions")
    assert (fault.error, fault.status, fault.count) == ("InternalServerError", 500, None)
