"""Every alarm of the transformed template (the real SAM transform) reads a metric AWS publishes:
namespace, metric name, statistic, unit and dimension set from the documented catalog
(tests/support/aws_metric_catalog.py, each table with its AWS documentation page), and dimension values that
name this stack's resources. Then the operational rules: which failures page, how missing data is
read, and that every alarm notifies both ways."""

from __future__ import annotations

import json
from typing import Any

import pytest

from dogbreed import STATE_MACHINE_PATH
from dogbreed.aws.sam_transform import translate
from tests.support.aws_metric_catalog import CATALOG
from tests.support.templates import load_template

TEMPLATE = load_template()
TOPIC = {"Ref": "AlarmTopic"}


@pytest.fixture(scope="module")
def resources() -> dict[str, dict[str, Any]]:
    [transformed] = translate(TEMPLATE, [{}])
    found: dict[str, dict[str, Any]] = transformed["Resources"]
    return found


def alarms(resources: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {lid: r["Properties"] for lid, r in resources.items() if r["Type"] == "AWS::CloudWatch::Alarm"}


def metric_stats(alarm: dict[str, Any]) -> list[dict[str, Any]]:
    """The metrics an alarm reads, each as {Namespace, MetricName, Dimensions, Stat, Unit?}: the
    alarm's own metric, or every MetricStat of a metric-math alarm."""
    if "Metrics" not in alarm:
        stat = alarm.get("Statistic") or alarm.get("ExtendedStatistic")
        keys = ("Namespace", "MetricName", "Dimensions", "Unit")
        return [{**{k: alarm[k] for k in keys if k in alarm}, "Stat": stat}]
    found = []
    for query in alarm["Metrics"]:
        if "MetricStat" in query:
            metric = query["MetricStat"]["Metric"]
            found.append({**metric, "Stat": query["MetricStat"]["Stat"], **_unit(query["MetricStat"])})
    return found


def _unit(metric_stat: dict[str, Any]) -> dict[str, Any]:
    return {"Unit": metric_stat["Unit"]} if "Unit" in metric_stat else {}


def statistic_kind(stat: str) -> str:
    return "Percentiles" if stat.startswith("p") and stat[1:].replace(".", "").isdigit() else stat


def every_metric(resources: dict[str, dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    return [(lid, metric) for lid, alarm in alarms(resources).items() for metric in metric_stats(alarm)]


# --- against AWS's documentation -----------------------------------------------------------------


def test_every_alarm_reads_a_documented_metric_with_a_valid_statistic_and_unit(
    resources: dict[str, dict[str, Any]],
) -> None:
    problems = []
    for lid, metric in every_metric(resources):
        namespace = CATALOG.get(metric["Namespace"])
        documented = namespace.metrics.get(metric["MetricName"]) if namespace else None
        if documented is None:
            problems.append(f"{lid}: {metric['Namespace']} {metric['MetricName']} is not a documented metric")
            continue
        if statistic_kind(metric["Stat"]) not in documented.statistics:
            problems.append(
                f"{lid}: {metric['Stat']} is not a documented statistic of {metric['MetricName']}"
            )
        if "Unit" in metric and metric["Unit"] != documented.unit:
            problems.append(
                f"{lid}: {metric['MetricName']} is published in {documented.unit}, not {metric['Unit']}"
            )
    assert not problems, "\n".join(problems)


def test_every_alarm_uses_a_dimension_set_the_service_publishes(resources: dict[str, dict[str, Any]]) -> None:
    problems = []
    for lid, metric in every_metric(resources):
        names = frozenset(d["Name"] for d in metric.get("Dimensions", []))
        if names not in CATALOG[metric["Namespace"]].dimension_sets:
            problems.append(f"{lid}: {metric['Namespace']} has no dimension set {sorted(names)}")
    assert not problems, "\n".join(problems)


def dimension_names_a_stack_resource(name: str, value: Any, resources: dict[str, dict[str, Any]]) -> bool:
    """Whether a dimension's value is the right attribute of this stack's resource of the right kind."""

    def ref_of(kind: str) -> bool:
        return isinstance(value, dict) and resources.get(value.get("Ref", ""), {}).get("Type") == kind

    if name == "FunctionName":
        return ref_of("AWS::Lambda::Function")
    if name == "StateMachineArn":
        return ref_of("AWS::StepFunctions::StateMachine")
    if name == "QueueName":
        target, attribute = value["Fn::GetAtt"]
        return resources[target]["Type"] == "AWS::SQS::Queue" and attribute == "QueueName"
    if name == "EndpointName":  # the endpoint the functions invoke
        functions = [r for r in resources.values() if r["Type"] == "AWS::Lambda::Function"]
        invoked = [f["Properties"]["Environment"]["Variables"].get("ENDPOINT_NAME") for f in functions]
        return value in invoked
    if name == "service":  # Powertools' service dimension: the functions' POWERTOOLS_SERVICE_NAME
        functions = [r for r in resources.values() if r["Type"] == "AWS::Lambda::Function"]
        variables = [f["Properties"]["Environment"]["Variables"] for f in functions]
        services = [v.get("POWERTOOLS_SERVICE_NAME") for v in variables]
        return value in services
    if name == "VariantName":  # the variant the pipeline's endpoint config creates
        return f'"VariantName": {json.dumps(value)}' in STATE_MACHINE_PATH.read_text(encoding="utf-8")
    if name == "ApiName":  # API Gateway's ApiName dimension is the RestApi's name
        apis = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::ApiGateway::RestApi"]
        return any(api.get("Name") == value for api in apis)
    if name == "Stage":
        stages = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::ApiGateway::Stage"]
        return any(stage["StageName"] == value for stage in stages)
    return False


def test_every_dimension_value_names_this_stacks_resource(resources: dict[str, dict[str, Any]]) -> None:
    problems = [
        f"{lid}: {dimension['Name']}={dimension['Value']}"
        for lid, metric in every_metric(resources)
        for dimension in metric.get("Dimensions", [])
        if not dimension_names_a_stack_resource(dimension["Name"], dimension["Value"], resources)
    ]
    assert not problems, "\n".join(problems)


def test_every_alarm_notifies_the_topic_when_it_fires_and_when_it_clears(
    resources: dict[str, dict[str, Any]],
) -> None:
    for lid, alarm in alarms(resources).items():
        assert alarm.get("AlarmActions") == [TOPIC], lid
        assert alarm.get("OKActions") == [TOPIC], lid


# --- what pages ------------------------------------------------------------------------------------


def alarms_on(resources: dict[str, dict[str, Any]], namespace: str, metric: str) -> list[dict[str, Any]]:
    return [
        a
        for a in alarms(resources).values()
        if a.get("Namespace") == namespace and a.get("MetricName") == metric
    ]


def test_the_apis_server_errors_page(resources: dict[str, dict[str, Any]]) -> None:
    # Endpoint and store failures reach callers as 502/503/504 answers, not as function errors
    [alarm] = alarms_on(resources, "AWS/ApiGateway", "5XXError")
    assert alarm["Statistic"] == "Sum"
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["TreatMissingData"] == "notBreaching"  # no data: no requests


def test_an_endpoint_with_no_instance_reporting_pages(resources: dict[str, dict[str, Any]]) -> None:
    # Instances report utilization every minute with or without traffic: silence is the outage
    [alarm] = alarms_on(resources, "/aws/sagemaker/Endpoints", "CPUUtilization")
    assert alarm["TreatMissingData"] == "breaching"
    assert (alarm["Statistic"], alarm["ComparisonOperator"], alarm["Threshold"]) == (
        "SampleCount",
        "LessThanThreshold",
        1,
    )


def test_endpoint_invocation_alarms_read_missing_data_as_no_traffic(
    resources: dict[str, dict[str, Any]],
) -> None:
    for metric in ("Invocation5XXErrors", "ModelLatency"):
        [alarm] = alarms_on(resources, "AWS/SageMaker", metric)
        assert alarm["TreatMissingData"] == "notBreaching", metric


def test_the_s3_drop_dead_letter_queue_pages(resources: dict[str, dict[str, Any]]) -> None:
    queues = [
        a["Dimensions"][0]["Value"]["Fn::GetAtt"][0]
        for a in alarms_on(resources, "AWS/SQS", "ApproximateNumberOfMessagesVisible")
    ]
    assert "PredictS3DeadLetterQueue" in queues
    assert "PipelineTriggerDLQ" in queues


def test_the_s3_function_pages_on_dropped_and_aging_events_not_on_throttles(
    resources: dict[str, dict[str, Any]],
) -> None:
    def on_s3_function(metric: str) -> list[dict[str, Any]]:
        return [
            a
            for a in alarms_on(resources, "AWS/Lambda", metric)
            if a["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": "PredictS3Function"}}]
        ]

    # Throttles are by design (reserved concurrency) and retried by Lambda's asynchronous queue
    assert not on_s3_function("Throttles")
    [dropped] = on_s3_function("AsyncEventsDropped")
    [age] = on_s3_function("AsyncEventAge")
    assert (dropped["Statistic"], dropped["Threshold"]) == ("Sum", 1)
    # The age alarm fires before the function's MaximumEventAgeInSeconds drops the event
    max_age_ms = TEMPLATE["Resources"]["PredictS3Function"]["Properties"]["EventInvokeConfig"][
        "MaximumEventAgeInSeconds"
    ]
    assert age["Statistic"] == "Maximum"
    assert 0 < age["Threshold"] < max_age_ms * 1000
