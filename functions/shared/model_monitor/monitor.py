"""One monitor run: read the last window of captures, compare each model version's predictions
with that version's training baseline, publish the figures.

- Captures: `s3://<bucket>/<prefix>/<endpoint>/<variant>/yyyy/mm/dd/hh/*.jsonl`, the hours the window
  touches, records whose inferenceTime falls in the window. Each file is read, observed and dropped
  before the next (`drift.observe`): memory holds one file and the window's small observations, not
  the window's captured images (an hour at 1 request/s of 200 KB images is about 1 GB of base64).
- Baseline: the model a prediction names (`model_version` is the SageMaker model's name, the
  pipeline names both alike) -> DescribeModel -> its model package in the registry ->
  DescribeModelPackage -> the model archive -> `baseline.json`, read once per container.
- Corrupt lines and unreadable responses are counted and reported, never fatal.
"""

from __future__ import annotations

import tarfile
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from botocore.exceptions import ClientError

from model_monitor.baseline import BASELINE_FILE, Baseline, BaselineError
from model_monitor.capture import hour_prefix, parse_lines
from model_monitor.drift import NO_DATA, DriftReport, Observation, Thresholds, drift_report, observe
from model_monitor.metrics import NAMESPACE, metric_data

MAX_CAPTURE_BYTES = 64 * 1024 * 1024  # one capture file; SageMaker writes small hourly files


class MonitorError(RuntimeError):
    """The monitor cannot compare (no baseline for a model, unreadable archive)."""


class Clients(Protocol):
    s3: Any
    sagemaker: Any
    cloudwatch: Any


@dataclass(frozen=True)
class MonitorConfig:
    endpoint_name: str
    capture_bucket: str
    capture_prefix: str
    variant_name: str = "AllTraffic"
    window: timedelta = timedelta(hours=1)
    thresholds: Thresholds = field(default_factory=Thresholds)


@dataclass
class MonitorResult:
    window_start: datetime
    window_end: datetime
    files: int = 0
    corrupt_lines: list[str] = field(default_factory=list)
    reports: list[DriftReport] = field(default_factory=list)

    @property
    def status(self) -> str:
        statuses = [report.status for report in self.reports]
        for status in ("drift", "ok", "insufficient-data"):
            if status in statuses:
                return status
        return NO_DATA

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "window_start": self.window_start.isoformat(),
            "window_end": self.window_end.isoformat(),
            "files": self.files,
            "corrupt_lines": self.corrupt_lines[:20],
            "reports": [report.as_dict() for report in self.reports],
        }


_baselines: dict[str, Baseline] = {}


def hours(start: datetime, end: datetime) -> Iterator[datetime]:
    hour = start.replace(minute=0, second=0, microsecond=0)
    while hour <= end:
        yield hour
        hour += timedelta(hours=1)


def read_captures(
    clients: Clients, config: MonitorConfig, start: datetime, end: datetime
) -> tuple[list[Observation], list[str], int]:
    """The window's observations, the lines that were no capture record, and the files read."""
    observations: list[Observation] = []
    errors: list[str] = []
    files = 0
    paginator = clients.s3.get_paginator("list_objects_v2")
    for hour in hours(start, end):
        prefix = hour_prefix(config.capture_prefix, config.endpoint_name, config.variant_name, hour)
        for page in paginator.paginate(Bucket=config.capture_bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                if not item["Key"].endswith(".jsonl") or item["Size"] > MAX_CAPTURE_BYTES:
                    continue
                files += 1
                body = clients.s3.get_object(Bucket=config.capture_bucket, Key=item["Key"])["Body"].read()
                parsed = parse_lines(body.decode("utf-8", errors="replace").splitlines(), source=item["Key"])
                errors.extend(parsed.errors)
                observations.extend(observe(r) for r in parsed.records if start <= r.inference_time <= end)
    return observations, errors, files


def model_archive_uri(clients: Clients, model_name: str) -> str:
    container = clients.sagemaker.describe_model(ModelName=model_name).get("PrimaryContainer", {})
    if container.get("ModelDataUrl"):
        return str(container["ModelDataUrl"])
    package = container.get("ModelPackageName")
    if not package:
        raise MonitorError(f"model {model_name} names neither a model archive nor a model package")
    spec = clients.sagemaker.describe_model_package(ModelPackageName=package)["InferenceSpecification"]
    return str(spec["Containers"][0]["ModelDataUrl"])


def load_baseline(clients: Clients, model_name: str) -> Baseline:
    """The baseline in the model's archive (cached per container: an archive never changes)."""
    if model_name in _baselines:
        return _baselines[model_name]
    uri = model_archive_uri(clients, model_name)
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    body = clients.s3.get_object(Bucket=bucket, Key=key)["Body"]
    # Streamed: only the members up to baseline.json are read.
    with tarfile.open(fileobj=body, mode="r|gz") as archive:
        for member in archive:
            if member.isfile() and member.name.removeprefix("./") == BASELINE_FILE:
                extracted = archive.extractfile(member)
                if extracted is None:
                    break
                baseline = Baseline.from_json(extracted.read())
                _baselines[model_name] = baseline
                return baseline
    raise MonitorError(f"{uri} holds no {BASELINE_FILE}: the model was trained before baselines existed")


def run_monitor(clients: Clients, config: MonitorConfig, now: datetime) -> MonitorResult:
    start = now - config.window
    observations, errors, files = read_captures(clients, config, start, now)
    result = MonitorResult(window_start=start, window_end=now, files=files, corrupt_lines=errors)
    by_version: dict[str | None, list[Observation]] = defaultdict(list)
    for observation in observations:
        by_version[observation.model_version].append(observation)
    unreadable = by_version.pop(None, [])
    for position, (version, version_observations) in enumerate(sorted(by_version.items())):
        assert version is not None
        try:
            baseline = load_baseline(clients, version)
        except (MonitorError, BaselineError, tarfile.TarError, ClientError) as error:
            # e.g. a retired version's model, deleted after a rollout, still has captures in the window
            report = DriftReport(model_version=version, records=len(version_observations))
            report.reasons.append(f"no baseline: {error}")
            result.reports.append(report)
            continue
        # Lines and responses that are no record of any version are charged to the first report.
        extra = unreadable if position == 0 else []
        report = drift_report(
            baseline,
            version_observations + extra,
            corrupt_lines=len(errors) if position == 0 else 0,
            thresholds=config.thresholds,
        )
        result.reports.append(report)
        clients.cloudwatch.put_metric_data(
            Namespace=NAMESPACE, MetricData=metric_data(report, endpoint=config.endpoint_name, timestamp=now)
        )
    if not by_version:
        report = DriftReport(model_version="", corrupt_lines=len(errors), unreadable=len(unreadable))
        report.reasons.append("no captured prediction in the window")
        if errors or unreadable:
            report.reasons.append(
                f"{len(errors)} corrupt capture line(s), {len(unreadable)} unreadable response(s)"
            )
        result.reports.append(report)
        clients.cloudwatch.put_metric_data(
            Namespace=NAMESPACE,
            MetricData=[
                datum
                for datum in metric_data(report, endpoint=config.endpoint_name, timestamp=now)
                if len(datum["Dimensions"]) == 1
            ],
        )
    return result
