"""The drift monitor end to end in moto: captures in S3 under SageMaker's key layout, the baseline in
the model archive the registry names, the template's drift alarms evaluated on the published
metrics. In-distribution traffic leaves every alarm OK; off-distribution traffic fires them; an empty
window and corrupt capture lines give a clear summary."""

from __future__ import annotations

import io
import json
import tarfile
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import boto3
import numpy as np
import pytest
from model_monitor.baseline import BASELINE_FILE
from model_monitor.capture import CaptureRecord, hour_prefix
from model_monitor.metrics import NAMESPACE
from model_monitor.monitor import MonitorConfig, run_monitor
from moto import mock_aws

from dogbreed.local.cloud.alarm_evaluator import ALARM, OK, AlarmEvaluator
from dogbreed.local.template_resources import create_resources
from dogbreed.template_stack import TemplateStack
from tests.support.credentials import FAKE_CREDENTIALS
from tests.support.monitor_traffic import capture, in_distribution, jpeg, off_distribution, tiny_baseline

BUCKET = "dogbreed-data-test"
PREFIX = "data-capture"
NOW = datetime(2026, 11, 22, 10, 30, tzinfo=UTC)
DRIFT_ALARMS = ("ClassDriftAlarm", "ConfidenceDriftAlarm", "ImageDriftAlarm")
ROLE = "arn:aws:iam::123456789012:role/sagemaker"


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[SimpleNamespace]:
    for name, value in FAKE_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        stack = TemplateStack.load()
        session = boto3.Session(region_name="us-east-1")
        created = create_resources(stack, session, only=set(DRIFT_ALARMS))
        clients = SimpleNamespace(
            s3=session.client("s3"),
            sagemaker=session.client("sagemaker"),
            cloudwatch=session.client("cloudwatch"),
        )
        clients.s3.create_bucket(Bucket=BUCKET)
        yield SimpleNamespace(
            clients=clients,
            alarms={logical: created.physical_names[logical] for logical in DRIFT_ALARMS},
            config=MonitorConfig(
                endpoint_name=str(stack.resolve({"Ref": "AWS::StackName"})),
                capture_bucket=BUCKET,
                capture_prefix=PREFIX,
            ),
        )


def register_model(world: SimpleNamespace, version: str, *, with_baseline: bool = True) -> None:
    """The pipeline's way: a model package in the registry and a model that names it."""
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        files = {"model_config.json": b"{}"}
        if with_baseline:
            files[BASELINE_FILE] = tiny_baseline(version).to_json().encode()
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    key = f"models/{version}/output/model.tar.gz"
    world.clients.s3.put_object(Bucket=BUCKET, Key=key, Body=archive.getvalue())
    sagemaker = world.clients.sagemaker
    group = f"group-{version}"
    sagemaker.create_model_package_group(ModelPackageGroupName=group)
    package = sagemaker.create_model_package(
        ModelPackageGroupName=group,
        InferenceSpecification={
            "Containers": [{"Image": "pytorch-inference:2", "ModelDataUrl": f"s3://{BUCKET}/{key}"}],
            "SupportedContentTypes": ["image/jpeg"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
    )["ModelPackageArn"]
    sagemaker.create_model(
        ModelName=version, ExecutionRoleArn=ROLE, PrimaryContainer={"ModelPackageName": package}
    )


def put_captures(
    world: SimpleNamespace, records: list[CaptureRecord], *, extra_lines: tuple[str, ...] = ()
) -> None:
    prefix = hour_prefix(PREFIX, world.config.endpoint_name, "AllTraffic", NOW)
    body = "\n".join([record.to_line() for record in records] + list(extra_lines)) + "\n"
    world.clients.s3.put_object(Bucket=BUCKET, Key=f"{prefix}10-30-00-000-abcd.jsonl", Body=body.encode())


def alarm_states(world: SimpleNamespace) -> dict[str, str]:
    states = AlarmEvaluator(world.clients.cloudwatch, clock=lambda: NOW).evaluate_all()
    return {logical: states[name] for logical, name in world.alarms.items()}


def published(world: SimpleNamespace, metric: str, version: str | None = None) -> list[float]:
    dimensions = [{"Name": "EndpointName", "Value": world.config.endpoint_name}]
    if version:
        dimensions.append({"Name": "ModelVersion", "Value": version})
    points = world.clients.cloudwatch.get_metric_statistics(
        Namespace=NAMESPACE,
        MetricName=metric,
        Dimensions=dimensions,
        StartTime=NOW - timedelta(hours=1),
        EndTime=NOW + timedelta(minutes=1),
        Period=3600,
        Statistics=["Maximum"],
    )["Datapoints"]
    return [point["Maximum"] for point in points]


def window(traffic: Any, version: str, count: int = 60) -> list[CaptureRecord]:
    return [
        capture(*traffic(seed), version=version, when=NOW - timedelta(minutes=1 + seed % 50))
        for seed in range(count)
    ]


def test_held_out_traffic_keeps_every_drift_alarm_ok(world: SimpleNamespace) -> None:
    register_model(world, "dogbreed-1-held-out")
    put_captures(world, window(in_distribution, "dogbreed-1-held-out"))

    result = run_monitor(world.clients, world.config, NOW)

    assert result.status == "ok", result.as_dict()
    assert published(world, "CapturedPredictions", "dogbreed-1-held-out") == [60.0]
    (class_js,) = published(world, "ClassDriftJS")
    assert class_js < 0.1
    assert alarm_states(world) == dict.fromkeys(DRIFT_ALARMS, OK)


def test_off_distribution_traffic_fires_the_drift_alarms(world: SimpleNamespace) -> None:
    register_model(world, "dogbreed-1-off")
    put_captures(world, window(off_distribution, "dogbreed-1-off"))

    result = run_monitor(world.clients, world.config, NOW)

    assert result.status == "drift"
    (class_js,) = published(world, "ClassDriftJS", "dogbreed-1-off")
    assert class_js > 0.1
    assert alarm_states(world) == dict.fromkeys(DRIFT_ALARMS, ALARM)


def test_an_empty_window_is_a_clear_no_data_summary_and_breaches_nothing(world: SimpleNamespace) -> None:
    old = capture(*in_distribution(0), when=NOW - timedelta(hours=3))
    put_captures(world, [old])  # in the hour's folder, but outside the window

    result = run_monitor(world.clients, world.config, NOW)

    summary = result.as_dict()
    assert summary["status"] == "no-data"
    assert summary["reports"][0]["reasons"] == ["no captured prediction in the window"]
    assert published(world, "CapturedPredictions") == [0.0]
    assert alarm_states(world) == dict.fromkeys(DRIFT_ALARMS, OK)


def test_corrupt_capture_lines_are_counted_and_named_not_fatal(world: SimpleNamespace) -> None:
    register_model(world, "dogbreed-1-corrupt")
    put_captures(
        world, window(in_distribution, "dogbreed-1-corrupt"), extra_lines=("{truncated", '{"captureData": 1}')
    )

    result = run_monitor(world.clients, world.config, NOW)

    assert result.status == "ok"
    assert len(result.corrupt_lines) == 2 and "not JSON" in result.corrupt_lines[0]
    assert result.reports[0].corrupt_lines == 2
    assert published(world, "CorruptCaptureLines") == [2.0]


def test_a_model_without_a_baseline_is_reported_not_compared(world: SimpleNamespace) -> None:
    register_model(world, "dogbreed-0-old", with_baseline=False)
    put_captures(world, window(in_distribution, "dogbreed-0-old", count=5))

    result = run_monitor(world.clients, world.config, NOW)

    (report,) = result.reports
    assert report.status == "no-data" and report.records == 5
    assert "holds no baseline.json" in report.reasons[0]
    assert json.dumps(result.as_dict())  # the summary the function returns is JSON


def test_a_version_whose_model_is_gone_is_reported_and_the_others_compared(world: SimpleNamespace) -> None:
    register_model(world, "dogbreed-1-current")
    records = window(in_distribution, "dogbreed-1-current") + window(
        in_distribution, "dogbreed-0-retired", count=3
    )
    put_captures(world, records)

    result = run_monitor(world.clients, world.config, NOW)

    reports = {report.model_version: report for report in result.reports}
    assert reports["dogbreed-1-current"].status == "ok"
    assert reports["dogbreed-0-retired"].status == "no-data"
    assert "no baseline" in reports["dogbreed-0-retired"].reasons[0]


def test_a_window_is_read_one_capture_file_at_a_time(world: SimpleNamespace) -> None:
    """The window's captured images are never held at once: each file is observed and dropped."""
    # Given 40 capture files of eight records, each request a 256 px photo-like JPEG
    register_model(world, "dogbreed-1-held-out")
    noise = np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    _, label, confidence = in_distribution(0)
    record = capture(jpeg(noise), label, confidence, version="dogbreed-1-held-out", when=NOW)
    line = record.to_line()
    prefix = hour_prefix(PREFIX, world.config.endpoint_name, "AllTraffic", NOW)
    for index in range(40):
        body = "\n".join([line] * 8).encode()
        world.clients.s3.put_object(Bucket=BUCKET, Key=f"{prefix}10-{index:02d}-00-000-abcd.jsonl", Body=body)
    window_bytes = 40 * 8 * len(line)

    # When the monitor runs over the window, with Python's allocations traced
    tracemalloc.start()
    try:
        result = run_monitor(world.clients, world.config, NOW + timedelta(minutes=1))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    # Then every record was observed, while memory peaked well below the window's captured bytes
    assert result.files == 40 and result.reports[0].records == 320
    assert peak < window_bytes / 4, (peak, window_bytes)
