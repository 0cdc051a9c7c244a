"""The metrics the local cloud publishes in AWS's place: API Gateway's request metrics from the local
HTTP API, and the SQS queue depth and SageMaker endpoint instance utilization that those services
publish every minute on AWS."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import boto3
import httpx
import pytest
from moto import mock_aws

from dogbreed.local.cloud.api import ApiSpec, LocalApi
from dogbreed.local.cloud.api_metrics import ApiRequestOutcome, request_metric_data
from dogbreed.local.cloud.service_metrics import EndpointInstance, ServiceMetrics, endpoint_instances
from dogbreed.local.lambda_runtime.runtime import LambdaRuntime
from dogbreed.local.metric_buffer import MetricBuffer

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


class RecordedPuts:
    def __init__(self) -> None:
        self.data: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, *, Namespace: str, MetricData: list[dict[str, Any]]) -> None:
        self.data += [(Namespace, datum) for datum in MetricData]

    def values(self, namespace: str, metric: str) -> list[float]:
        return [d["Value"] for ns, d in self.data if ns == namespace and d["MetricName"] == metric]


def test_a_5xx_answer_counts_one_request_and_one_server_error() -> None:
    data = request_metric_data("dogbreed-api", "dev", ApiRequestOutcome(503, 12.5, NOW))

    by_name = {d["MetricName"]: d for d in data}
    assert {n: by_name[n]["Value"] for n in ("Count", "4XXError", "5XXError")} == {
        "Count": 1,
        "4XXError": 0,
        "5XXError": 1,
    }
    assert by_name["Latency"] == {
        "MetricName": "Latency",
        "Dimensions": [{"Name": "ApiName", "Value": "dogbreed-api"}, {"Name": "Stage", "Value": "dev"}],
        "Timestamp": NOW,
        "Value": 12.5,
        "Unit": "Milliseconds",
    }


def test_the_local_http_api_records_every_answer_it_gives() -> None:
    # Given the local API with no routes (every path answers API Gateway's 403) and a metric buffer
    puts = RecordedPuts()
    buffer = MetricBuffer(puts, interval_seconds=3600)
    api = LocalApi(LambdaRuntime())
    api.configure(ApiSpec("PredictionApi", "dev", (), (), api_name="dogbreed-local-api"), {})
    api.metrics = buffer

    # When a request arrives
    transport = httpx.ASGITransport(app=api.app())

    async def call() -> httpx.Response:
        async with httpx.AsyncClient(transport=transport, base_url="http://local") as client:
            return await client.get("/nowhere")

    response = anyio.run(call)
    buffer.close()

    # Then the 403 is one request and one client error of that API and stage
    assert response.status_code == 403
    assert puts.values("AWS/ApiGateway", "Count") == [1]
    assert puts.values("AWS/ApiGateway", "4XXError") == [1]
    assert puts.values("AWS/ApiGateway", "5XXError") == [0]


def test_endpoint_instances_are_read_from_the_local_sagemakers_listing() -> None:
    listing = [
        {
            "EndpointName": "dogbreed-endpoint",
            "Variants": [{"VariantName": "AllTraffic", "Instances": [{"pid": 11}, {"pid": 12}]}],
        },
        {"EndpointName": "starting", "Variants": [{"VariantName": "AllTraffic", "Instances": []}]},
    ]
    assert endpoint_instances(listing) == [
        EndpointInstance("dogbreed-endpoint", "AllTraffic", 11),
        EndpointInstance("dogbreed-endpoint", "AllTraffic", 12),
    ]


@pytest.fixture
def aws() -> Iterator[Any]:
    with mock_aws():
        yield boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
        )


def test_queue_depth_and_instance_utilization_reach_cloudwatch(aws: Any) -> None:
    # Given a dead-letter queue holding one message and one running "instance" (this process)
    sqs, cloudwatch = aws.client("sqs"), aws.client("cloudwatch")
    url = sqs.create_queue(QueueName="stack-dlq")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="{}")
    buffer = MetricBuffer(cloudwatch.put_metric_data, interval_seconds=3600)
    metrics = ServiceMetrics(
        sqs,
        buffer,
        queue_names=lambda: ["stack-dlq"],
        instances=lambda: [EndpointInstance("dogbreed-endpoint", "AllTraffic", os.getpid())],
    )

    # When the services' minute comes
    metrics.publish_once()
    buffer.close()

    # Then CloudWatch holds SQS's depth and the instance's report under AWS's names and dimensions
    def latest(namespace: str, metric: str, dimensions: list[dict[str, str]], stat: str) -> float:
        now = datetime.now(UTC)
        points = cloudwatch.get_metric_statistics(
            Namespace=namespace,
            MetricName=metric,
            Dimensions=dimensions,
            StartTime=now - timedelta(minutes=5),
            EndTime=now + timedelta(minutes=1),
            Period=60,
            Statistics=[stat],
        )["Datapoints"]
        return float(points[0][stat]) if points else -1.0

    assert (
        latest(
            "AWS/SQS",
            "ApproximateNumberOfMessagesVisible",
            [{"Name": "QueueName", "Value": "stack-dlq"}],
            "Maximum",
        )
        == 1
    )
    endpoint = [
        {"Name": "EndpointName", "Value": "dogbreed-endpoint"},
        {"Name": "VariantName", "Value": "AllTraffic"},
    ]
    assert latest("/aws/sagemaker/Endpoints", "CPUUtilization", endpoint, "SampleCount") == 1
