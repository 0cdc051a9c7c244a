"""The report page: it parses as HTML, holds every chart as a PNG, and its numbers are metrics.json's
and the registry record's; the tuning trials are read in the shape SageMaker answers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from botocore.stub import Stubber

from dogbreed.report.collect import ReportData, read_trials
from dogbreed.report.render import CHARTS, render_html
from tests.support.report_page import PNG_MAGIC, parse

METRICS: dict[str, Any] = {
    "test_acc": 0.8125,
    "test_loss": 0.5312,
    "test_top5": 0.975,
    "val_acc": 0.85,
    "best_epoch": 2,
    "history": [
        {"epoch": 1, "train_loss": 1.2, "train_acc": 0.5, "val_loss": 1.0, "val_acc": 0.6},
        {"epoch": 2, "train_loss": 0.7, "train_acc": 0.8, "val_loss": 0.6, "val_acc": 0.85},
    ],
    "confusion_matrix": [[3, 1], [0, 4]],
}
NOW = datetime(2026, 11, 22, 12, tzinfo=UTC)


def report_data(**changes: Any) -> ReportData:
    data = ReportData(
        model_version="dogbreed-1-v2",
        registry={
            "package_arn": "arn:aws:sagemaker:us-east-1:123456789012:model-package/dogbreed/2",
            "approval_status": "Approved",
            "metadata": {"test_acc": "0.8125", "run_id": "run-2"},
        },
        metrics=METRICS,
        run={
            "gate": {
                "passed": True,
                "test_acc": 0.8125,
                "threshold": 0.5,
                "production_test_acc": 0.75,
                "production_version": "dogbreed-1-v1",
            }
        },
        trials=[
            {
                "name": f"hpo-1-00{i}",
                "status": "Completed",
                "hyperparameters": {"learning-rate": str(0.001 * i), "epochs": str(2 + i)},
                "objective": 0.6 + 0.1 * i,
                "objective_name": "val_acc",
            }
            for i in (1, 2)
        ],
        drift={
            "ClassDriftJS": [(NOW - timedelta(hours=2), 0.02), (NOW - timedelta(hours=1), 0.3)],
            "ConfidenceDriftJS": [(NOW - timedelta(hours=1), 0.05)],
        },
    )
    for key, value in changes.items():
        setattr(data, key, value)
    return data


def test_every_chart_is_a_png_and_the_numbers_are_metrics_json_and_the_registry_record() -> None:
    page = parse(render_html(report_data()))

    assert sorted(page.charts) == sorted(CHARTS)
    assert all(png.startswith(PNG_MAGIC) and len(png) > 1000 for png in page.charts.values())
    fields = {name: values[0] for name, values in page.fields.items()}
    for name in ("test_acc", "test_loss", "test_top5", "val_acc"):
        assert float(fields[name]) == METRICS[name]
    assert int(fields["best_epoch"]) == METRICS["best_epoch"]
    assert fields["model_version"] == "dogbreed-1-v2"
    assert fields["approval_status"] == "Approved"
    assert float(fields["registry_test_acc"]) == float(METRICS["test_acc"])
    assert fields["package_arn"].endswith("model-package/dogbreed/2")
    assert (fields["gate_passed"], fields["production_version"]) == ("True", "dogbreed-1-v1")
    assert float(fields["production_test_acc"]) == 0.75
    assert [float(value) for value in page.fields["objective"]] == [0.7, 0.8]


def test_a_first_model_without_trials_or_traffic_still_has_every_chart() -> None:
    page = parse(render_html(report_data(trials=[], drift={}, run={})))

    assert sorted(page.charts) == sorted(CHARTS)
    assert page.fields["gate_passed"] == [""]


def test_trials_are_read_from_sagemakers_answer() -> None:
    sagemaker = boto3.client(
        "sagemaker", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    with Stubber(sagemaker) as stub:
        stub.add_response(
            "list_training_jobs_for_hyper_parameter_tuning_job",
            {
                "TrainingJobSummaries": [
                    {
                        "TrainingJobName": "hpo-1-002",
                        "TrainingJobArn": "arn:aws:sagemaker:us-east-1:123456789012:training-job/hpo-1-002",
                        "CreationTime": NOW,
                        "TrainingJobStatus": "Completed",
                        "TunedHyperParameters": {"learning-rate": '"0.002"'},
                        "FinalHyperParameterTuningJobObjectiveMetric": {
                            "MetricName": "val_acc",
                            "Value": 0.8,
                        },
                    },
                    {
                        "TrainingJobName": "hpo-1-001",
                        "TrainingJobArn": "arn:aws:sagemaker:us-east-1:123456789012:training-job/hpo-1-001",
                        "CreationTime": NOW,
                        "TrainingJobStatus": "Failed",
                        "TunedHyperParameters": {"learning-rate": "0.1"},
                    },
                ]
            },
            {"HyperParameterTuningJobName": "hpo-1"},
        )
        trials = read_trials(sagemaker, "hpo-1")

    assert [(t["name"], t["objective"], t["hyperparameters"]) for t in trials] == [
        ("hpo-1-001", None, {"learning-rate": "0.1"}),
        ("hpo-1-002", 0.8, {"learning-rate": "0.002"}),
    ]
