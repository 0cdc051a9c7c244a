"""The pipeline as the demo drives it: the training code and a dataset uploaded (manifest.json last,
the trigger), the execution found and followed state by state with its SageMaker jobs and endpoint."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from dogbreed.local.cloud import state as cloud_state
from dogbreed.packaging import source_tarball

TERMINAL = frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"})


def _say(text: str) -> None:
    print(text, flush=True)


def pack_sourcedir() -> bytes:
    """The training code package as sourcedir.tar.gz, built as the deploy builds it."""
    return source_tarball().data


def upload_dataset(s3: Any, root: Path, bucket: str, dataset_id: str) -> int:
    """Every file under datasets/<dataset_id>/, manifest.json last (it starts the pipeline)."""
    files = sorted(path for path in root.rglob("*") if path.is_file() and path.name != "manifest.json")
    for path in files:
        s3.upload_file(str(path), bucket, f"datasets/{dataset_id}/{path.relative_to(root).as_posix()}")
    s3.upload_file(str(root / "manifest.json"), bucket, f"datasets/{dataset_id}/manifest.json")
    return len(files) + 1


class ExecutionFollower:
    """Prints each state as the execution enters it, plus the SageMaker jobs and the endpoint."""

    def __init__(self, sfn: Any, state: cloud_state.CloudState) -> None:
        self.sfn = sfn
        self.state = state
        self.sagemaker = state.client("sagemaker")
        self.seen_events = 0
        self.job_lines: dict[str, str] = {}
        self.endpoint_line = ""
        self.epoch_lines: dict[str, str] = {}
        self.entered: dict[str, int] = {}
        self.started = time.monotonic()
        self._poll_sagemaker(show=False)  # jobs of earlier runs are not this run's progress

    def _elapsed(self) -> str:
        return f"[{time.monotonic() - self.started:6.1f}s]"

    def poll(self, execution_arn: str) -> dict[str, Any]:
        history = self.sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]
        for event in history[self.seen_events :]:
            if event["type"].endswith("StateEntered"):
                name = event["stateEnteredEventDetails"]["name"]
                self.entered[name] = self.entered.get(name, 0) + 1
                if self.entered[name] == 1:  # polling loops are shown once
                    _say(f"{self._elapsed()} state   {name}")
            elif event["type"] == "TaskFailed":
                details = event.get("taskFailedEventDetails", {})
                _say(f"{self._elapsed()} error   {details.get('error')}: {str(details.get('cause'))[:300]}")
        self.seen_events = len(history)
        self._poll_sagemaker()
        described: dict[str, Any] = self.sfn.describe_execution(executionArn=execution_arn)
        return described

    def _poll_sagemaker(self, show: bool = True) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        from dogbreed.local.cloud.sagemaker_view import endpoint_summary, overview

        try:
            view = overview(self.sagemaker)
        except (BotoCoreError, ClientError):
            return
        for job in reversed(view["training_jobs"]):  # oldest first
            name = job["TrainingJobName"]
            line = f"{job['TrainingJobStatus']} {job.get('SecondaryStatus', '')}"
            if self.job_lines.get(name) != line:
                self.job_lines[name] = line
                if show:
                    _say(f"{self._elapsed()} job     {name}: {line}{self._metrics(name, job)}")
            if show and job["TrainingJobStatus"] == "InProgress":
                self._epoch_progress(name)
        for endpoint in view["endpoints"]:
            line = endpoint_summary(endpoint)
            if line != self.endpoint_line:
                self.endpoint_line = line
                if show:
                    _say(f"{self._elapsed()} endpoint {line}")

    def _describe_job(self, name: str) -> dict[str, Any]:
        """DescribeTrainingJob, or {} when it cannot be read right now."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            described: dict[str, Any] = self.sagemaker.describe_training_job(TrainingJobName=name)
        except (BotoCoreError, ClientError):
            return {}
        return described

    def _epoch_progress(self, name: str) -> None:
        """The job's latest per-epoch metrics (the metric regexes over its log), when they change."""
        described = self._describe_job(name)
        metrics = {item["MetricName"]: item["Value"] for item in described.get("FinalMetricDataList", [])}
        shown = " ".join(
            f"{key}={float(metrics[key]):.3f}"
            for key in ("train_loss", "val_loss", "val_acc")
            if key in metrics
        )
        if shown and self.epoch_lines.get(name) != shown:
            self.epoch_lines[name] = shown
            _say(f"{self._elapsed()} epoch   {name}: {shown}")

    def _metrics(self, name: str, job: dict[str, Any]) -> str:
        described = self._describe_job(name) if job["TrainingJobStatus"] in ("Completed", "Failed") else {}
        if not described:
            return ""
        metrics = {item["MetricName"]: item["Value"] for item in described.get("FinalMetricDataList", [])}
        shown = " ".join(f"{key}={float(value):.3f}" for key, value in sorted(metrics.items()))
        hyper = described.get("HyperParameters", {})
        tuned = " ".join(
            f"{key}={hyper[key]}" for key in ("learning-rate", "epochs", "batch-size") if key in hyper
        )
        reason = f" ({described.get('FailureReason')})" if described.get("FailureReason") else ""
        return f" | {shown} | {tuned}{reason}"


def wait_for_execution(sfn: Any, arn: str, since: float, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for item in sfn.list_executions(stateMachineArn=arn, maxResults=20)["executions"]:
            if item["startDate"].timestamp() >= since - 1:
                return str(item["executionArn"])
        time.sleep(0.5)
    raise RuntimeError("the manifest upload did not start the pipeline (see dogbreed local status)")


def follow_execution(
    sfn: Any, state: cloud_state.CloudState, execution_arn: str, timeout: float
) -> dict[str, Any]:
    """Print the execution state by state until it ends (or `timeout`); its DescribeExecution."""
    follower = ExecutionFollower(sfn, state)
    deadline = time.monotonic() + timeout
    described: dict[str, Any] = {}
    while time.monotonic() < deadline:
        described = follower.poll(execution_arn)
        if described["status"] in TERMINAL:
            break
        time.sleep(1.0)
    return described


def start_run(s3: Any, sfn: Any, outputs: dict[str, str], dataset: Path, dataset_id: str) -> str:
    """Upload `dataset` as datasets/<dataset_id>/ (manifest.json last); the execution it started."""
    started = time.time()
    count = upload_dataset(s3, dataset, outputs["DataBucketName"], dataset_id)
    _say(f"dataset -> s3://{outputs['DataBucketName']}/datasets/{dataset_id}/ ({count} files)")
    return wait_for_execution(sfn, outputs["TrainingPipelineArn"], started, 60)
