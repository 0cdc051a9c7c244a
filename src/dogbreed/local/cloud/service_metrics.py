"""The metrics AWS services publish on their own schedule, which the local cloud's services do not:

- Amazon SQS, every minute per queue (`AWS/SQS`, dimension QueueName, unit Count):
  `ApproximateNumberOfMessagesVisible`, `ApproximateNumberOfMessagesNotVisible`,
  `ApproximateNumberOfMessagesDelayed`, read from the queue's attributes;
- SageMaker endpoint instances, every minute per in-service instance with or without traffic
  (`/aws/sagemaker/Endpoints`, dimensions EndpointName and VariantName, unit Percent):
  `CPUUtilization` (summed over cores, as SageMaker reports it) and `MemoryUtilization` of each
  model-server process the local SageMaker runs. An endpoint with no instance reports nothing,
  which is what the endpoint health alarm reads.

One `publish_once` per (scaled) minute, from a daemon thread the local cloud starts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import psutil

from dogbreed.local.background import Ticker
from dogbreed.local.metric_buffer import MetricBuffer

logger = logging.getLogger(__name__)

SQS_NAMESPACE: Final = "AWS/SQS"
ENDPOINT_INSTANCE_NAMESPACE: Final = "/aws/sagemaker/Endpoints"
# Queue attribute -> the metric SQS publishes from it.
SQS_QUEUE_METRICS: Final = {
    "ApproximateNumberOfMessages": "ApproximateNumberOfMessagesVisible",
    "ApproximateNumberOfMessagesNotVisible": "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed": "ApproximateNumberOfMessagesDelayed",
}


@dataclass(frozen=True)
class EndpointInstance:
    endpoint_name: str
    variant_name: str
    pid: int


def endpoint_instances(sagemaker_status: Iterable[dict[str, Any]]) -> list[EndpointInstance]:
    """The model-server processes of the local SageMaker's endpoints (its status listing)."""
    return [
        EndpointInstance(endpoint["EndpointName"], variant["VariantName"], int(instance["pid"]))
        for endpoint in sagemaker_status
        for variant in endpoint.get("Variants", [])
        for instance in variant.get("Instances", [])
        if instance.get("pid")
    ]


def _datum(
    name: str, dimensions: list[dict[str, str]], timestamp: datetime, value: float, unit: str
) -> dict[str, Any]:
    return {
        "MetricName": name,
        "Dimensions": dimensions,
        "Timestamp": timestamp,
        "Value": value,
        "Unit": unit,
    }


class ServiceMetrics:
    def __init__(
        self,
        sqs: Any,
        buffer: MetricBuffer,
        *,
        queue_names: Callable[[], Iterable[str]],
        instances: Callable[[], Iterable[EndpointInstance]],
    ) -> None:
        self._sqs = sqs
        self._buffer = buffer
        self._queue_names = queue_names
        self._instances = instances
        self._processes: dict[int, psutil.Process] = {}
        self._ticker: Ticker | None = None

    def publish_once(self) -> None:
        now = datetime.now(UTC)
        for name in self._queue_names():
            self._publish_queue(name, now)
        for instance in self._instances():
            self._publish_instance(instance, now)
        self._buffer.flush()

    def _publish_queue(self, name: str, now: datetime) -> None:
        try:
            url = self._sqs.get_queue_url(QueueName=name)["QueueUrl"]
            attributes = self._sqs.get_queue_attributes(QueueUrl=url, AttributeNames=list(SQS_QUEUE_METRICS))
        except Exception:
            logger.debug("queue %s not readable", name, exc_info=True)
            return
        dimensions = [{"Name": "QueueName", "Value": name}]
        for attribute, metric in SQS_QUEUE_METRICS.items():
            value = float(attributes.get("Attributes", {}).get(attribute, 0))
            self._buffer.add(SQS_NAMESPACE, _datum(metric, dimensions, now, value, "Count"))

    def _publish_instance(self, instance: EndpointInstance, now: datetime) -> None:
        try:
            process = self._processes.get(instance.pid) or psutil.Process(instance.pid)
            self._processes[instance.pid] = process
            cpu, memory = process.cpu_percent(interval=None), process.memory_percent()
        except psutil.Error:
            self._processes.pop(instance.pid, None)
            return  # the instance died: it reports nothing, as a failed SageMaker instance
        dimensions = [
            {"Name": "EndpointName", "Value": instance.endpoint_name},
            {"Name": "VariantName", "Value": instance.variant_name},
        ]
        for metric, value in (("CPUUtilization", cpu), ("MemoryUtilization", memory)):
            self._buffer.add(ENDPOINT_INSTANCE_NAMESPACE, _datum(metric, dimensions, now, value, "Percent"))

    # --- the schedule --------------------------------------------------------------------------
    def start(self, interval_seconds: float) -> None:
        """Run `publish_once` every `interval_seconds` in a daemon thread until `stop`."""
        self._ticker = Ticker(self.publish_once, interval_seconds, name="service-metrics")

    def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.stop(timeout=10)
