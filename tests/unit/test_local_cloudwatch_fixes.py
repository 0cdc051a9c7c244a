"""moto's CloudWatch as the local cloud serves it: DescribeAlarms applies `StateValue` together with
`AlarmNames`, as CloudWatch does (the pipeline's FindRollbackAlarms asks for exactly that)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.cloudwatch.responses import CloudWatchResponse

from dogbreed.local.cloud import cloudwatch_fixes

NAMES = ["rollback-5xx", "rollback-latency"]


def _alarms(cloudwatch: Any) -> None:
    for name in NAMES:
        cloudwatch.put_metric_alarm(
            AlarmName=name,
            Namespace="AWS/SageMaker",
            MetricName="Invocation5XXErrors",
            Statistic="Sum",
            Period=60,
            EvaluationPeriods=1,
            Threshold=1,
            ComparisonOperator="GreaterThanOrEqualToThreshold",
        )
    cloudwatch.set_alarm_state(AlarmName=NAMES[0], StateValue="ALARM", StateReason="5 errors")


@pytest.fixture
def cloudwatch(aws_credentials: None) -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("cloudwatch", region_name="us-east-1")
        _alarms(client)
        yield client


def test_unmended_moto_ignores_the_state_filter_when_alarms_are_named(
    cloudwatch: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The reason for the fix (if moto mends it, the self-check fails and the fix can go)
    assert cloudwatch_fixes.check_moto_internals() == []
    monkeypatch.setattr(CloudWatchResponse, "describe_alarms", cloudwatch_fixes._ORIGINAL)
    found = cloudwatch.describe_alarms(AlarmNames=NAMES, StateValue="ALARM")["MetricAlarms"]
    assert sorted(alarm["AlarmName"] for alarm in found) == NAMES


def test_named_alarms_are_narrowed_to_the_state_asked_for(
    cloudwatch: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(CloudWatchResponse, "describe_alarms", CloudWatchResponse.describe_alarms)
    cloudwatch_fixes.install()  # undone by monkeypatch after the test

    firing = cloudwatch.describe_alarms(AlarmNames=NAMES, StateValue="ALARM")["MetricAlarms"]
    calm = cloudwatch.describe_alarms(AlarmNames=NAMES, StateValue="OK")["MetricAlarms"]
    every = cloudwatch.describe_alarms(AlarmNames=NAMES)["MetricAlarms"]

    assert [alarm["AlarmName"] for alarm in firing] == ["rollback-5xx"]
    assert [alarm["AlarmName"] for alarm in calm] == ["rollback-latency"]
    assert len(every) == 2
