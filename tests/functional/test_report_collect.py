"""`dogbreed report` against a stack in moto: the registry record, the model archive's metrics.json,
the run record's gate decision and the monitor's published figures end up on the page, with the
numbers the stores hold (read back by the test itself)."""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import boto3
import pytest
from model_monitor.drift import drift_report, observe
from model_monitor.metrics import NAMESPACE, metric_data
from moto import mock_aws

from dogbreed.local.template_resources import create_resources
from dogbreed.report import write_report
from dogbreed.report.collect import ReportError, collect
from dogbreed.template_stack import TemplateStack
from tests.support.credentials import FAKE_CREDENTIALS
from tests.support.monitor_traffic import capture, in_distribution, tiny_baseline
from tests.support.report_page import parse

BUCKET = "dogbreed-data-report"
VERSION = "dogbreed-1-v2"
NOW = datetime.now(UTC).replace(microsecond=0)
METRICS = {
    "test_acc": 0.8125,
    "test_loss": 0.4,
    "test_top5": 1.0,
    "val_acc": 0.9,
    "best_epoch": 1,
    "history": [{"epoch": 1, "train_loss": 1.0, "train_acc": 0.6, "val_loss": 0.8, "val_acc": 0.9}],
    "confusion_matrix": [[2, 0], [1, 1]],
}
GATE = {
    "passed": True,
    "test_acc": 0.8125,
    "threshold": 0.5,
    "production_test_acc": 0.75,
    "production_version": "v1",
}


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[SimpleNamespace]:
    for name, value in FAKE_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        template = TemplateStack.load()
        session = boto3.Session(region_name="us-east-1")
        created = create_resources(template, session, only={"RunsTable"})
        s3, sagemaker = session.client("s3"), session.client("sagemaker")
        s3.create_bucket(Bucket=BUCKET)
        archive = io.BytesIO()
        with tarfile.open(fileobj=archive, mode="w:gz") as tar:
            for name, data in {
                "model.pth": b"weights",
                "metrics.json": json.dumps(METRICS).encode(),
                "baseline.json": tiny_baseline(VERSION).to_json().encode(),
            }.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        s3.put_object(Bucket=BUCKET, Key=f"models/{VERSION}/model.tar.gz", Body=archive.getvalue())
        sagemaker.create_model_package_group(ModelPackageGroupName="dogbreed-report")
        package = sagemaker.create_model_package(
            ModelPackageGroupName="dogbreed-report",
            ModelApprovalStatus="Approved",
            CustomerMetadataProperties={"model_version": VERSION, "run_id": "run-2", "test_acc": "0.8125"},
            InferenceSpecification={
                "Containers": [
                    {"Image": "inference:1", "ModelDataUrl": f"s3://{BUCKET}/models/{VERSION}/model.tar.gz"}
                ],
                "SupportedContentTypes": ["image/jpeg"],
                "SupportedResponseMIMETypes": ["application/json"],
            },
        )["ModelPackageArn"]
        table = created.physical_names["RunsTable"]
        session.client("dynamodb").put_item(
            TableName=table,
            Item={"run_id": {"S": "run-2"}, "detail": {"S": json.dumps({"gate": GATE, "tuning": None})}},
        )
        report = drift_report(
            tiny_baseline(VERSION),
            [observe(capture(*in_distribution(s), version=VERSION)) for s in range(40)],
        )
        session.client("cloudwatch").put_metric_data(
            Namespace=NAMESPACE,
            MetricData=metric_data(report, endpoint="dogbreed-report", timestamp=NOW - timedelta(minutes=5)),
        )
        yield SimpleNamespace(
            clients=session.client,
            package=package,
            report=report,
            outputs={
                "ModelPackageGroupName": "dogbreed-report",
                "RunsTableName": table,
                "EndpointName": "dogbreed-report",
            },
        )


def test_the_page_shows_what_the_stack_holds(stack: SimpleNamespace, tmp_path: Path) -> None:
    path = write_report(stack.clients, stack.outputs, VERSION, tmp_path / "report.html")

    page = parse(path.read_text(encoding="utf-8"))
    described = stack.clients("sagemaker").describe_model_package(ModelPackageName=stack.package)
    fields = {name: values[0] for name, values in page.fields.items()}
    assert len(page.charts) == 5
    assert fields["package_arn"] == described["ModelPackageArn"]
    assert fields["approval_status"] == described["ModelApprovalStatus"]
    assert float(fields["registry_test_acc"]) == float(described["CustomerMetadataProperties"]["test_acc"])
    assert float(fields["test_acc"]) == METRICS["test_acc"]
    assert float(fields["production_test_acc"]) == GATE["production_test_acc"]


def test_the_drift_series_is_the_monitors_published_figure(stack: SimpleNamespace) -> None:
    data = collect(stack.clients, stack.outputs, None, NOW)

    assert data.model_version == VERSION and data.baseline is not None
    [(_, class_js)] = data.drift["ClassDriftJS"]
    assert class_js == pytest.approx(stack.report.class_js)
    assert data.drift["CapturedPredictions"][0][1] == 40


def test_an_unknown_version_is_a_clear_error(stack: SimpleNamespace) -> None:
    with pytest.raises(ReportError, match="holds no model version nope"):
        collect(stack.clients, stack.outputs, "nope", NOW)
