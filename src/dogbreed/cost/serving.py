"""What serving predictions costs a month: every billed call one prediction makes, on each path, with
each endpoint type, idle and at a number of predictions.

A prediction's billed calls (functions/, template.yaml):

| call | API path (`POST /predictions`) | S3 path (`incoming/` drop) |
|---|---|---|
| API Gateway REST request | 1 | - |
| S3 PUT | 1 (results/api/<id>.json) | 2 (the dropped image, results/<key>.json) |
| S3 GET | - | 1 (the image) |
| Lambda request + GB-seconds | 1 | 1 |
| DynamoDB write units (items under 1 KB) | 1 (the record) | 3 (idempotency start and end, the record) |
| SageMaker inference: instance hours, or serverless GB-seconds | 1 | 1 |
| SageMaker data processed in (image) and out (answer) | 1 + 1 | 1 + 1 |
| X-Ray trace recorded (Tracing: Active) | sampled | sampled |
| CloudWatch Logs ingestion (function and endpoint logs) | yes | yes |

S3 to EventBridge events are AWS service events (free); S3 objects use SSE-S3 (no KMS request);
DynamoDB tables use the AWS managed key, whose data keys DynamoDB caches per table, so KMS requests
are a small monthly figure, not a per-prediction one.

Each row of the comparison is one `RowBuilder`: a path and an endpoint type today; a batch path
adds its own builder to `ROW_BUILDERS` with its own line items.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from model_monitor.metrics import NAMESPACE as MONITOR_NAMESPACE

from dogbreed.cost.prices import price

GB = 1024 * 1024  # KB per GB


@dataclass(frozen=True)
class LineItem:
    name: str
    quantity: float  # per month
    unit: str
    usd: float


@dataclass(frozen=True)
class PathCalls:
    """The billed calls of one prediction on one path."""

    name: str
    api_gateway_requests: int
    s3_puts: int
    s3_gets: int
    dynamodb_writes: int
    on_provisioned_concurrency: bool  # the API function's alias may have provisioned concurrency


API_PATH = PathCalls("API", 1, 1, 0, 1, on_provisioned_concurrency=True)
S3_PATH = PathCalls("S3 drop", 0, 2, 1, 3, on_provisioned_concurrency=False)


@dataclass(frozen=True)
class StackFacts:
    """What the template itself bills while idle, and the functions' memory."""

    alarms: int  # on every stack, apart from the drift monitor's
    instance_alarms: int  # only with an instance endpoint (Condition: IsInstanceEndpoint)
    kms_keys: int
    dynamodb_tables: int
    lambda_memory_mb: int


def stack_facts(template: dict[str, Any]) -> StackFacts:
    resources = list(template.get("Resources", {}).values())
    types = [resource.get("Type") for resource in resources]
    # The drift alarms are billed with the monitor (dogbreed.cost.monitor), not here.
    alarm_conditions = [
        r.get("Condition")
        for r in resources
        if r.get("Type") == "AWS::CloudWatch::Alarm"
        and r.get("Properties", {}).get("Namespace") != MONITOR_NAMESPACE
    ]
    memory = template.get("Globals", {}).get("Function", {}).get("MemorySize", 128)
    return StackFacts(
        alarms=alarm_conditions.count(None),
        instance_alarms=alarm_conditions.count("IsInstanceEndpoint"),
        kms_keys=types.count("AWS::KMS::Key"),
        dynamodb_tables=types.count("AWS::DynamoDB::Table"),
        lambda_memory_mb=int(memory),
    )


@dataclass(frozen=True)
class ServingCost:
    label: str
    predictions: int
    fixed: tuple[LineItem, ...]  # billed whether or not anything is predicted
    variable: tuple[LineItem, ...]  # billed for `predictions`

    @property
    def idle_usd(self) -> float:
        return sum(item.usd for item in self.fixed)

    @property
    def variable_usd(self) -> float:
        return sum(item.usd for item in self.variable)

    @property
    def total_usd(self) -> float:
        return self.idle_usd + self.variable_usd

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "predictions": self.predictions,
            "idle_usd": self.idle_usd,
            "variable_usd": self.variable_usd,
            "total_usd": self.total_usd,
            "fixed": [vars(item) for item in self.fixed],
            "variable": [vars(item) for item in self.variable],
        }


def _item(name: str, quantity: float, unit: str, unit_price: float) -> LineItem:
    return LineItem(name, quantity, unit, quantity * unit_price)


def _hours(prices: dict[str, Any]) -> float:
    return float(prices["assumptions"]["hours_per_month"])


def _provisioned_concurrency(parameters: dict[str, str]) -> int:
    """The API alias's provisioned concurrency: applied only in prod (template condition)."""
    if parameters.get("Stage") != "prod":
        return 0
    return int(parameters.get("ApiProvisionedConcurrency", "0"))


def stack_fixed_items(
    parameters: dict[str, str], prices: dict[str, Any], facts: StackFacts, endpoint_type: str
) -> list[LineItem]:
    """What the stack bills every month with no traffic, apart from the endpoint."""
    hours = _hours(prices)
    alarms = facts.alarms + (facts.instance_alarms if endpoint_type == "instance" else 0)
    items = [
        _item("CloudWatch alarms", alarms, "alarms", float(prices["cloudwatch_alarm_per_month"])),
        _item("KMS keys (alarm topic)", facts.kms_keys, "keys", float(prices["kms_key_per_month"])),
        _item(
            "KMS requests (DynamoDB table keys)",
            facts.dynamodb_tables * float(prices["assumptions"]["kms_requests_per_table_hour"]) * hours,
            "requests",
            float(prices["kms_per_ten_thousand_requests"]) / 10_000,
        ),
    ]
    provisioned = _provisioned_concurrency(parameters)
    if provisioned:
        gb_seconds = provisioned * facts.lambda_memory_mb / 1024 * hours * 3600
        items.append(
            _item(
                "Lambda provisioned concurrency",
                gb_seconds,
                f"GB-s ({provisioned} x {facts.lambda_memory_mb} MB)",
                float(prices["lambda_provisioned_concurrency_per_gb_second"]),
            )
        )
    return items


def call_items(
    path: PathCalls, parameters: dict[str, str], prices: dict[str, Any], facts: StackFacts, predictions: int
) -> list[LineItem]:
    """The billed calls of `predictions` predictions on `path`, without the endpoint's compute."""
    assumptions = prices["assumptions"]
    n = float(predictions)
    gb_seconds = n * float(assumptions["lambda_ms_per_prediction"]) / 1000 * facts.lambda_memory_mb / 1024
    duration_price = (
        "lambda_provisioned_duration_per_gb_second"
        if path.on_provisioned_concurrency and _provisioned_concurrency(parameters)
        else "lambda_per_gb_second"
    )
    reservoir = float(assumptions["xray_reservoir_per_second"]) * _hours(prices) * 3600
    traces = min(n, reservoir) + float(assumptions["xray_sampling_rate"]) * max(0.0, n - reservoir)
    data_gb = n * (float(assumptions["image_kb"]) + float(assumptions["response_kb"])) / GB
    items = [
        _item(
            "API Gateway requests",
            n * path.api_gateway_requests,
            "requests",
            float(prices["api_gateway_rest_per_million_requests"]) / 1e6,
        ),
        _item("Lambda requests", n, "requests", float(prices["lambda_per_million_requests"]) / 1e6),
        _item("Lambda duration", gb_seconds, "GB-s", float(prices[duration_price])),
        _item("S3 PUT", n * path.s3_puts, "requests", float(prices["s3_per_thousand_put"]) / 1000),
        _item("S3 GET", n * path.s3_gets, "requests", float(prices["s3_per_thousand_get"]) / 1000),
        _item(
            "DynamoDB writes",
            n * path.dynamodb_writes,
            "write units",
            float(prices["dynamodb_per_million_write_units"]) / 1e6,
        ),
        _item("SageMaker data in + out", data_gb, "GB", float(prices["sagemaker_data_processed_per_gb"])),
        _item("X-Ray traces", traces, "traces", float(prices["xray_per_million_traces_recorded"]) / 1e6),
        _item(
            "CloudWatch Logs",
            n * float(assumptions["log_kb_per_prediction"]) / GB,
            "GB",
            float(prices["cloudwatch_logs_ingestion_per_gb"]),
        ),
    ]
    return [item for item in items if item.quantity]


def instance_endpoint_items(
    parameters: dict[str, str], prices: dict[str, Any], predictions: int
) -> tuple[LineItem, LineItem]:
    """(the always-on floor, the instance-hours traffic adds above it). Traffic is assumed spread
    evenly over the month: an instance answers ScalingTargetInvocationsPerInstance a minute."""
    instance_type = parameters["EndpointInstanceType"]
    hourly = price(prices["sagemaker_hosting_per_hour"], instance_type, "hosting")
    floor_hours = int(parameters["EndpointMinInstances"]) * _hours(prices)
    needed_hours = predictions / (float(parameters["ScalingTargetInvocationsPerInstance"]) * 60)
    above = max(0.0, needed_hours - floor_hours)
    return (
        _item("endpoint floor", floor_hours, f"{instance_type} instance-hours", hourly),
        _item("endpoint instances above the floor", above, f"{instance_type} instance-hours", hourly),
    )


def serverless_endpoint_item(
    parameters: dict[str, str], prices: dict[str, Any], predictions: int
) -> LineItem:
    """Serverless inference: billed per millisecond of inference at the configured memory."""
    memory_gb = int(parameters["ServerlessMemorySizeInMB"]) / 1024
    seconds = predictions * float(prices["assumptions"]["serverless_inference_ms"]) / 1000
    return _item(
        "serverless inference",
        seconds * memory_gb,
        f"GB-s at {parameters['ServerlessMemorySizeInMB']} MB",
        float(prices["sagemaker_serverless_per_gb_second"]),
    )


RowBuilder = Callable[[dict[str, str], dict[str, Any], StackFacts, int], ServingCost]


def endpoint_row(path: PathCalls, endpoint_type: str) -> RowBuilder:
    def build(
        parameters: dict[str, str], prices: dict[str, Any], facts: StackFacts, predictions: int
    ) -> ServingCost:
        fixed = stack_fixed_items(parameters, prices, facts, endpoint_type)
        variable = call_items(path, parameters, prices, facts, predictions)
        if endpoint_type == "instance":
            floor, above = instance_endpoint_items(parameters, prices, predictions)
            fixed.insert(0, floor)
            variable.insert(0, above)
            label = f"{path.name}, {parameters['EndpointInstanceType']} endpoint"
        else:
            variable.insert(0, serverless_endpoint_item(parameters, prices, predictions))
            label = f"{path.name}, serverless endpoint"
        return ServingCost(
            label, predictions, tuple(fixed), tuple(item for item in variable if item.quantity)
        )

    return build


# One row per way of serving predictions; extend with further paths (e.g. a batch path).
ROW_BUILDERS: list[RowBuilder] = [
    endpoint_row(API_PATH, "instance"),
    endpoint_row(API_PATH, "serverless"),
    endpoint_row(S3_PATH, "instance"),
    endpoint_row(S3_PATH, "serverless"),
]


def serving_rows(
    parameters: dict[str, str], prices: dict[str, Any], facts: StackFacts, predictions: int
) -> list[ServingCost]:
    return [build(parameters, prices, facts, predictions) for build in ROW_BUILDERS]


def deployed_api_cost(
    parameters: dict[str, str], prices: dict[str, Any], facts: StackFacts, predictions: int
) -> ServingCost:
    """The API path on the endpoint type the parameters deploy."""
    endpoint_type = parameters.get("EndpointType", "instance")
    return endpoint_row(API_PATH, endpoint_type)(parameters, prices, facts, predictions)
