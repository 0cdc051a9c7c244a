"""The local cloud's call recorder (dogbreed.local.iam.recorder) in front of moto, read back as API
calls (dogbreed.local.iam.wire) and IAM requests: boto3 clients signed with a role's identity, as the
functions and the local SageMaker sign theirs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config

from dogbreed.aws.iam.api_authorization import requests_for_call
from dogbreed.local.cloud.faults import FaultRegistry
from dogbreed.local.iam.identity import RoleClients, access_key_id_for
from dogbreed.local.iam.recorder import CallLog, RecordedCall
from dogbreed.local.iam.wire import read_call

REGION, ACCOUNT = "us-east-1", "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/dogbreed-local-PredictS3FunctionRole"
NO_RETRIES = Config(retries={"max_attempts": 1})


@pytest.fixture(scope="module")
def cloud() -> Iterator[tuple[str, CallLog]]:
    from dogbreed.local.cloud.moto_server import MotoServer

    log = CallLog()
    server = MotoServer(host="127.0.0.1", port=0, faults=FaultRegistry(), calls=log)
    server.start()
    try:
        yield f"http://127.0.0.1:{server.port}", log
    finally:
        server.stop()


@pytest.fixture
def clients(
    cloud: tuple[str, CallLog], monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Any, Any, CallLog]]:
    url, log = cloud
    monkeypatch.setenv("AWS_ENDPOINT_URL", url)
    operator = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
    )
    role = RoleClients(REGION, NO_RETRIES)(ROLE)
    before = len(log.calls())
    yield (lambda service: operator.client(service, endpoint_url=url)), role, log
    del log._calls[before:]  # each test reads its own calls


def iam(call: RecordedCall) -> list[str]:
    api = read_call(call)
    return [
        str(r)
        for r in requests_for_call(api.iam_prefix, api.operation, api.params, region=REGION, account=ACCOUNT)
    ]


def test_a_roles_s3_calls_are_recorded_and_read_back_as_their_operations(clients: Any) -> None:
    operator, role, log = clients
    operator("s3").create_bucket(Bucket="inference")
    operator("s3").put_object(Bucket="inference", Key="incoming/a.jpg", Body=b"x")

    role("s3").list_objects_v2(Bucket="inference", Prefix="incoming/")
    role("s3").head_object(Bucket="inference", Key="incoming/a.jpg")
    role("s3").get_object(Bucket="inference", Key="incoming/a.jpg")["Body"].read()
    role("s3").put_object(Bucket="inference", Key="results/a.jpg.json", Body=b"{}")

    calls = log.calls()
    assert {call.access_key_id for call in calls} == {access_key_id_for(ROLE)}  # the operator's are not
    assert [read_call(call).operation for call in calls] == [
        "ListObjectsV2",
        "HeadObject",
        "GetObject",
        "PutObject",
    ]
    assert [iam(call) for call in calls] == [
        ["s3:ListBucket on arn:aws:s3:::inference s3:prefix=incoming/"],
        ["s3:GetObject on arn:aws:s3:::inference/incoming/a.jpg"],
        ["s3:GetObject on arn:aws:s3:::inference/incoming/a.jpg"],
        ["s3:PutObject on arn:aws:s3:::inference/results/a.jpg.json"],
    ]


def test_json_and_query_protocol_calls_are_read_from_their_bodies(clients: Any) -> None:
    operator, role, log = clients
    operator("dynamodb").create_table(
        TableName="predictions",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    topic = operator("sns").create_topic(Name="alarms")["TopicArn"]

    role("dynamodb").put_item(TableName="predictions", Item={"id": {"S": "1"}})
    role("sns").publish(TopicArn=topic, Message="approve?")

    assert [iam(call) for call in log.calls()] == [
        [f"dynamodb:PutItem on arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/predictions"],
        [f"sns:Publish on {topic}"],
    ]


def test_a_rest_json_call_is_found_by_its_route(clients: Any) -> None:
    _operator, role, log = clients
    role("sagemaker-runtime").invoke_endpoint(
        EndpointName="dogbreed-local", Body=b"x", ContentType="image/jpeg"
    )

    [call] = log.calls()
    assert iam(call) == [
        f"sagemaker:InvokeEndpoint on arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/dogbreed-local"
    ]
