"""Everything the report shows about one model version, read from the stack:

- the registry record: the model package of the stack's group whose `CustomerMetadataProperties`
  name the version (the latest package when no version is given), with its approval status;
- the model directory's `metrics.json` and `baseline.json`, streamed from the package's archive;
- the run record (the runs table item of the package's `run_id`): the gate decision and the
  production model's figures it was compared with;
- the tuning trials of the run's tuning job: hyperparameters and the objective;
- the drift monitor's hourly figures for the version (`DogBreed/ModelMonitor`).
"""

from __future__ import annotations

import json
import tarfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from model_monitor.metrics import ENDPOINT_DIMENSION, NAMESPACE, VERSION_DIMENSION

DRIFT_METRICS: tuple[str, ...] = ("ClassDriftJS", "ConfidenceDriftJS", "ImageStatsKS", "CapturedPredictions")
ARCHIVE_FILES: tuple[str, ...] = ("metrics.json", "baseline.json")


class ReportError(LookupError):
    """The stack holds no such model version (or no model at all)."""


@dataclass
class ReportData:
    model_version: str
    registry: dict[str, Any]
    metrics: dict[str, Any]
    baseline: dict[str, Any] | None = None
    run: dict[str, Any] = field(default_factory=dict)
    trials: list[dict[str, Any]] = field(default_factory=list)
    # metric name -> [(timestamp, value)], oldest first
    drift: dict[str, list[tuple[datetime, float]]] = field(default_factory=dict)


def find_package(sagemaker: Any, group: str, model_version: str | None) -> dict[str, Any]:
    paginator = sagemaker.get_paginator("list_model_packages")
    pages = paginator.paginate(ModelPackageGroupName=group, SortBy="CreationTime", SortOrder="Descending")
    for page in pages:
        for summary in page.get("ModelPackageSummaryList", []):
            package: dict[str, Any] = sagemaker.describe_model_package(
                ModelPackageName=summary["ModelPackageArn"]
            )
            version = package.get("CustomerMetadataProperties", {}).get("model_version")
            if model_version is None or version == model_version:
                return package
    wanted = f"model version {model_version}" if model_version else "any model package"
    raise ReportError(f"the registry group {group} holds no {wanted}")


def read_archive(s3: Any, uri: str) -> dict[str, dict[str, Any]]:
    """metrics.json and baseline.json of a model archive (streamed; members found are parsed)."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    found: dict[str, dict[str, Any]] = {}
    with tarfile.open(fileobj=s3.get_object(Bucket=bucket, Key=key)["Body"], mode="r|gz") as archive:
        for member in archive:
            name = member.name.removeprefix("./")
            if member.isfile() and name in ARCHIVE_FILES:
                extracted = archive.extractfile(member)
                if extracted is not None:
                    found[name] = json.loads(extracted.read())
            if len(found) == len(ARCHIVE_FILES):
                break
    if "metrics.json" not in found:
        raise ReportError(f"{uri} holds no metrics.json")
    return found


def read_run(dynamodb: Any, table: str, run_id: str) -> dict[str, Any]:
    item = dynamodb.get_item(TableName=table, Key={"run_id": {"S": run_id}}).get("Item")
    if not item or "detail" not in item:
        return {}
    detail: dict[str, Any] = json.loads(item["detail"]["S"])
    return detail


def read_trials(sagemaker: Any, tuning_job: str) -> list[dict[str, Any]]:
    trials = []
    paginator = sagemaker.get_paginator("list_training_jobs_for_hyper_parameter_tuning_job")
    for page in paginator.paginate(HyperParameterTuningJobName=tuning_job):
        for job in page.get("TrainingJobSummaries", []):
            objective = job.get("FinalHyperParameterTuningJobObjectiveMetric", {})
            trials.append(
                {
                    "name": job["TrainingJobName"],
                    "status": job.get("TrainingJobStatus", ""),
                    "hyperparameters": {
                        k: v.strip('"') for k, v in job.get("TunedHyperParameters", {}).items()
                    },
                    "objective": objective.get("Value"),
                    "objective_name": objective.get("MetricName", ""),
                }
            )
    return sorted(trials, key=lambda trial: trial["name"])


def read_drift(
    cloudwatch: Any, endpoint: str, model_version: str, end: datetime, days: int = 14
) -> dict[str, list[tuple[datetime, float]]]:
    dimensions = [
        {"Name": ENDPOINT_DIMENSION, "Value": endpoint},
        {"Name": VERSION_DIMENSION, "Value": model_version},
    ]
    series: dict[str, list[tuple[datetime, float]]] = {}
    for metric in DRIFT_METRICS:
        points = cloudwatch.get_metric_statistics(
            Namespace=NAMESPACE,
            MetricName=metric,
            Dimensions=dimensions,
            StartTime=end - timedelta(days=days),
            EndTime=end,
            Period=3600,
            Statistics=["Maximum"],
        )["Datapoints"]
        series[metric] = sorted((point["Timestamp"], float(point["Maximum"])) for point in points)
    return series


def collect(clients: Any, outputs: dict[str, str], model_version: str | None, now: datetime) -> ReportData:
    """`clients(service)` gives a boto3 client; `outputs` are the stack's outputs."""
    package = find_package(clients("sagemaker"), outputs["ModelPackageGroupName"], model_version)
    metadata = package.get("CustomerMetadataProperties", {})
    version = str(metadata.get("model_version", model_version or ""))
    archive_uri = package["InferenceSpecification"]["Containers"][0]["ModelDataUrl"]
    files = read_archive(clients("s3"), archive_uri)
    run = (
        read_run(clients("dynamodb"), outputs["RunsTableName"], metadata["run_id"])
        if metadata.get("run_id")
        else {}
    )
    tuning_job = (run.get("tuning") or {}).get("name") or metadata.get("tuning_job")
    return ReportData(
        model_version=version,
        registry={
            "package_arn": package["ModelPackageArn"],
            "approval_status": package.get("ModelApprovalStatus", ""),
            "created": str(package.get("CreationTime", "")),
            "model_data_url": archive_uri,
            "metadata": metadata,
        },
        metrics=files["metrics.json"],
        baseline=files.get("baseline.json"),
        run=run,
        trials=read_trials(clients("sagemaker"), tuning_job) if tuning_job else [],
        drift=read_drift(clients("cloudwatch"), outputs["EndpointName"], version, now),
    )
