"""The local cloud's alarm evaluation: the state rules of the CloudWatch user guide ("Alarm
evaluation", "Configuring how CloudWatch alarms treat missing data") as a pure function, then the
evaluator against moto's CloudWatch, with the template's own alarms as the local stack deploys them."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from moto import mock_aws

from dogbreed.local.cloud.alarm_evaluator import ALARM, INSUFFICIENT_DATA, OK, AlarmEvaluator, evaluate
from dogbreed.local.template_resources import create_resources
from dogbreed.template_stack import REGION, TemplateStack


def state(
    values: list[float | None], treat_missing: str, *, needed: int = 3, threshold: float = 5
) -> str | None:
    result = evaluate(
        values,
        threshold=threshold,
        comparison="GreaterThanOrEqualToThreshold",
        datapoints_to_alarm=needed,
        treat_missing=treat_missing,
    )
    return None if result is None else result.state


# --- the rules -------------------------------------------------------------------------------------


def test_enough_breaching_datapoints_alarm_and_fewer_do_not() -> None:
    assert state([6, 7, 5], "missing") == ALARM
    assert state([6, 1, 5], "missing") == OK
    assert state([6, 1, 5], "missing", needed=2) == ALARM  # DatapointsToAlarm 2 of 3


@pytest.mark.parametrize(
    ("treat_missing", "expected"),
    [("breaching", ALARM), ("notBreaching", OK), ("missing", INSUFFICIENT_DATA), ("ignore", None)],
)
def test_a_range_with_no_data_follows_treat_missing_data(treat_missing: str, expected: str | None) -> None:
    # None: the alarm keeps whatever state it is in
    assert state([None, None, None], treat_missing) == expected


def test_missing_points_count_as_breaching_only_when_told_so() -> None:
    assert state([None, 6, None], "breaching") == ALARM
    assert state([None, 6, None], "notBreaching", needed=1) == ALARM
    assert state([None, 6, None], "notBreaching") == OK
    assert state([None, 6, 6], "missing", needed=2) == ALARM


def test_less_than_compares_the_other_way() -> None:
    result = evaluate(
        [0, 0, 0],
        threshold=1,
        comparison="LessThanThreshold",
        datapoints_to_alarm=3,
        treat_missing="breaching",
    )
    assert result is not None and result.state == ALARM


# --- against moto's CloudWatch ---------------------------------------------------------------------


@pytest.fixture
def aws() -> Iterator[Any]:
    with mock_aws():
        session = boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
        )
        yield session


@functools.cache
def local_stack() -> TemplateStack:
    return TemplateStack.load()


def deploy_alarms(session: Any) -> TemplateStack:
    stack = local_stack()
    alarms = {lid for lid, r in stack.resources.items() if r["Type"] == "AWS::CloudWatch::Alarm"}
    create_resources(stack, session, only=alarms)
    return stack


def alarm_state(session: Any, stack: TemplateStack, logical_id: str) -> str:
    [alarm] = session.client("cloudwatch").describe_alarms(AlarmNames=[stack.physical_name(logical_id)])[
        "MetricAlarms"
    ]
    return str(alarm["StateValue"])


def test_the_local_stack_creates_the_templates_alarms_with_resolved_dimensions(aws: Any) -> None:
    stack = deploy_alarms(aws)

    [alarm] = aws.client("cloudwatch").describe_alarms(
        AlarmNames=[stack.physical_name("ApiServerErrorsAlarm")]
    )["MetricAlarms"]

    assert alarm["Namespace"] == "AWS/ApiGateway"
    assert {d["Name"]: d["Value"] for d in alarm["Dimensions"]} == {
        "ApiName": f"{stack.stack_name}-api",
        "Stage": stack.parameters["Stage"],
    }
    assert alarm["TreatMissingData"] == "notBreaching"


def test_api_5xx_datapoints_put_the_api_alarm_in_alarm_and_silence_returns_it_to_ok(aws: Any) -> None:
    # Given the template's alarms and five 5xx answers just now
    stack = deploy_alarms(aws)
    cloudwatch = aws.client("cloudwatch")
    dimensions = [{"Name": "ApiName", "Value": f"{stack.stack_name}-api"}, {"Name": "Stage", "Value": "dev"}]
    now = datetime.now(UTC)
    cloudwatch.put_metric_data(
        Namespace="AWS/ApiGateway",
        MetricData=[
            {
                "MetricName": "5XXError",
                "Dimensions": dimensions,
                "Timestamp": now,
                "Value": 1,
                "Unit": "Count",
            }
        ]
        * 5,
    )
    evaluator = AlarmEvaluator(cloudwatch, period_scale=0.01)  # 5 minutes -> 3 s

    # When the alarms are evaluated
    evaluator.evaluate_all()

    # Then the API alarm is in ALARM, and an hour later (no data, not breaching) back to OK
    assert alarm_state(aws, stack, "ApiServerErrorsAlarm") == ALARM
    later = AlarmEvaluator(cloudwatch, period_scale=0.01, clock=lambda: datetime(2099, 1, 1, tzinfo=UTC))
    later.evaluate_all()
    assert alarm_state(aws, stack, "ApiServerErrorsAlarm") == OK


def test_an_endpoint_with_no_instance_reporting_is_in_alarm(aws: Any) -> None:
    # Given the template's alarms and no endpoint instance metrics at all
    stack = deploy_alarms(aws)

    AlarmEvaluator(aws.client("cloudwatch"), period_scale=0.05).evaluate_all()

    # Then the health alarm (missing data breaches) is in ALARM, the 5xx alarm (no traffic) is OK
    assert alarm_state(aws, stack, "EndpointInstancesAlarm") == ALARM
    assert alarm_state(aws, stack, "EndpointServerErrorsAlarm") == OK
