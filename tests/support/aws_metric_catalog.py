"""The CloudWatch metrics AWS documents for the resources this stack alarms on: namespace, metric
name, unit, valid statistics and the dimension sets the service publishes, each table with the page
it was read from; and the stack's own metrics, from the code that publishes them.
tests/unit/test_template_alarms.py checks every alarm of the transformed template against it; an
alarm on a metric, statistic or dimension set not listed here reads no data on AWS.

Percentiles (`pNN`) are listed where the service documents them ("Percentiles" below).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from model_monitor.metrics import ENDPOINT_DIMENSION, VERSION_DIMENSION
from model_monitor.metrics import METRICS as MONITOR_METRICS
from model_monitor.metrics import NAMESPACE as MONITOR_NAMESPACE

COUNT_STATS = frozenset({"Sum", "SampleCount", "Average", "Minimum", "Maximum"})
ALL_STATS = COUNT_STATS | {"Percentiles"}


@dataclass(frozen=True)
class DocumentedMetric:
    unit: str
    statistics: frozenset[str]


@dataclass(frozen=True)
class Namespace:
    source: str  # the AWS documentation page the table below was read from
    dimension_sets: tuple[frozenset[str], ...]
    metrics: dict[str, DocumentedMetric] = field(default_factory=dict)


def _metrics(unit: str, statistics: frozenset[str], *names: str) -> dict[str, DocumentedMetric]:
    return {name: DocumentedMetric(unit, statistics) for name in names}


CATALOG: dict[str, Namespace] = {
    "AWS/ApiGateway": Namespace(
        source="https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-metrics-and-dimensions.html",
        # REST APIs: per API, per API and stage, per API, stage, resource and method.
        dimension_sets=(
            frozenset({"ApiName"}),
            frozenset({"ApiName", "Stage"}),
            frozenset({"ApiName", "Method", "Resource", "Stage"}),
        ),
        metrics={
            **_metrics(
                "Count", COUNT_STATS, "4XXError", "5XXError", "CacheHitCount", "CacheMissCount", "Count"
            ),
            **_metrics("Milliseconds", ALL_STATS, "IntegrationLatency", "Latency"),
        },
    ),
    "AWS/Lambda": Namespace(
        source="https://docs.aws.amazon.com/lambda/latest/dg/monitoring-metrics-types.html",
        # Per function (all versions and aliases), per alias or version (Resource), per executed version.
        dimension_sets=(
            frozenset({"FunctionName"}),
            frozenset({"FunctionName", "Resource"}),
            frozenset({"FunctionName", "ExecutedVersion"}),
        ),
        metrics={
            **_metrics(
                "Count",
                COUNT_STATS,
                "Invocations",
                "Errors",
                "DeadLetterErrors",
                "DestinationDeliveryFailures",
                "Throttles",
                "ProvisionedConcurrencyInvocations",
                "ProvisionedConcurrencySpilloverInvocations",
                "ConcurrentExecutions",
                "ProvisionedConcurrentExecutions",
                "UnreservedConcurrentExecutions",
                "AsyncEventsReceived",
                "AsyncEventsDropped",
            ),
            **_metrics("Milliseconds", ALL_STATS, "Duration", "AsyncEventAge"),
            **_metrics("None", COUNT_STATS, "ProvisionedConcurrencyUtilization"),
        },
    ),
    "AWS/SageMaker": Namespace(
        source="https://docs.aws.amazon.com/sagemaker/latest/dg/monitoring-cloudwatch.html#cloudwatch-metrics-endpoint-invocation",
        dimension_sets=(frozenset({"EndpointName", "VariantName"}),),
        metrics={
            **_metrics("None", frozenset({"Sum", "SampleCount"}), "Invocations", "InvocationsPerInstance"),
            **_metrics("None", frozenset({"Sum", "Average"}), "Invocation4XXErrors", "Invocation5XXErrors"),
            **_metrics(
                "Microseconds",
                frozenset({"Average", "Sum", "Minimum", "Maximum", "SampleCount", "Percentiles"}),
                "ModelLatency",
                "OverheadLatency",
            ),
        },
    ),
    "/aws/sagemaker/Endpoints": Namespace(
        source="https://docs.aws.amazon.com/sagemaker/latest/dg/monitoring-cloudwatch.html#cloudwatch-metrics-endpoints",
        # Endpoint instance metrics, published every minute for each in-service instance.
        dimension_sets=(frozenset({"EndpointName", "VariantName"}),),
        metrics=_metrics(
            "Percent",
            COUNT_STATS,
            "CPUUtilization",
            "MemoryUtilization",
            "DiskUtilization",
            "GPUUtilization",
            "GPUMemoryUtilization",
        ),
    ),
    "AWS/SQS": Namespace(
        source="https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-available-cloudwatch-metrics.html",
        dimension_sets=(frozenset({"QueueName"}),),
        metrics={
            **_metrics(
                "Count",
                COUNT_STATS,
                "ApproximateNumberOfMessagesDelayed",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesVisible",
                "NumberOfEmptyReceives",
                "NumberOfMessagesDeleted",
                "NumberOfMessagesReceived",
                "NumberOfMessagesSent",
            ),
            **_metrics("Seconds", COUNT_STATS, "ApproximateAgeOfOldestMessage"),
            **_metrics("Bytes", COUNT_STATS, "SentMessageSize"),
        },
    ),
    # The stack's own metrics: published by the drift monitor (functions/shared/model_monitor/metrics.py),
    # read from its one definition.
    MONITOR_NAMESPACE: Namespace(
        source="functions/shared/model_monitor/metrics.py",
        dimension_sets=(frozenset({ENDPOINT_DIMENSION}), frozenset({ENDPOINT_DIMENSION, VERSION_DIMENSION})),
        metrics={name: DocumentedMetric(unit, COUNT_STATS) for name, unit in MONITOR_METRICS.items()},
    ),
    # The prediction functions' model-behaviour metric (functions/shared/prediction/observability.py,
    # ConfidenceWatch); tests/unit/test_lambda_observability.py checks what they emit against this.
    "DogBreed": Namespace(
        source="functions/shared/prediction/observability.py",
        dimension_sets=(frozenset({"service", "EndpointName"}),),
        metrics=_metrics("Count", COUNT_STATS, "LowConfidence"),
    ),
    "AWS/States": Namespace(
        source="https://docs.aws.amazon.com/step-functions/latest/dg/procedure-cw-metrics.html",
        dimension_sets=(frozenset({"StateMachineArn"}),),
        metrics={
            **_metrics(
                "Count",
                COUNT_STATS,
                "ExecutionsAborted",
                "ExecutionsFailed",
                "ExecutionsStarted",
                "ExecutionsSucceeded",
                "ExecutionsTimedOut",
                "ExecutionThrottled",
                "ExecutionsRedriven",
            ),
            **_metrics("Milliseconds", ALL_STATS, "ExecutionTime"),
        },
    ),
}
