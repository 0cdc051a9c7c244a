"""Batches from the operator's side: submit one (write its manifest), find its execution, and read
its progress and summary. `dogbreed batch submit|status`, the demo and the benchmark use it.

The bucket layout and the manifest's rules are the product's (`batch_inference.layout`,
`batch_inference.manifest`, shipped in the Lambda layer); this module reads the same copies.

    document = manifest_for("photos/2026/", bucket, top_k=3)          # a prefix, keys or a JSON file
    submit(s3, bucket, "shelter-2026", document)                       # the batch starts (EventBridge)
    status = batch_status(clients, outputs, "shelter-2026")            # execution, job, counts, summary
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from batch_inference import layout
from batch_inference.manifest import DEFAULT_TOP_K, DEPLOYED

ClientFactory = Callable[[str], Any]
# How many recent executions `find_execution` looks through for the batch.
EXECUTION_SCAN_LIMIT = 200


def manifest_for(
    target: str, bucket: str, *, top_k: int = DEFAULT_TOP_K, model: str = DEPLOYED
) -> dict[str, Any]:
    """The manifest for `target`: a local JSON manifest file (used as it is, options added when it
    has none), an s3:// prefix or key prefix in the inference bucket."""
    path = Path(target)
    if target.endswith(".json") and path.is_file():
        document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        document.setdefault("top_k", top_k)
        document.setdefault("model", model)
        return document
    prefix = target.removeprefix(f"s3://{bucket}/") if target.startswith("s3://") else target
    return {"prefix": prefix, "top_k": top_k, "model": model}


def submit(s3: Any, bucket: str, batch_id: str, document: dict[str, Any]) -> str:
    """Write the batch's manifest, which starts it; returns the manifest's key."""
    if not layout.BATCH_ID_PATTERN.match(batch_id):
        raise ValueError(f"{batch_id!r} is not a batch id: 1-128 characters of A-Z a-z 0-9 . _ -")
    key = layout.manifest_key(batch_id)
    s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(document).encode(), ContentType="application/json")
    return key


def _names_batch(execution_input: str, batch_id: str) -> bool:
    try:
        document = json.loads(execution_input)
    except ValueError:
        return False
    key = document.get("detail", {}).get("object", {}).get("key") if isinstance(document, dict) else None
    return key == layout.manifest_key(batch_id) or document.get("batch_id") == batch_id


def find_execution(sfn: Any, state_machine_arn: str, batch_id: str) -> dict[str, Any] | None:
    """The newest execution of the batch state machine started for `batch_id` (describe_execution)."""
    executions = sfn.list_executions(stateMachineArn=state_machine_arn, maxResults=EXECUTION_SCAN_LIMIT)
    ordered = sorted(executions["executions"], key=lambda item: item["startDate"], reverse=True)
    for summary in ordered:
        described: dict[str, Any] = sfn.describe_execution(executionArn=summary["executionArn"])
        if _names_batch(described.get("input", ""), batch_id):
            return described
    return None


def wait_for_execution(
    sfn: Any, state_machine_arn: str, batch_id: str, *, timeout: float, poll_seconds: float = 1.0
) -> dict[str, Any]:
    """The batch's execution once it has ended; TimeoutError when it has not within `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        execution = find_execution(sfn, state_machine_arn, batch_id)
        if execution is not None and execution["status"] != "RUNNING":
            return execution
        time.sleep(poll_seconds)
    raise TimeoutError(f"batch {batch_id} did not end within {timeout:.0f} s")


def transform_job_name(sfn: Any, execution_arn: str) -> str | None:
    """The transform job the execution started (its Transform task's request), if it got that far."""
    events = sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]
    for event in events:
        details = event.get("taskScheduledEventDetails")
        if details and str(details.get("resource", "")).startswith("createTransformJob"):
            name: str = json.loads(details["parameters"])["TransformJobName"]
            return name
    return None


def _count(s3: Any, bucket: str, prefix: str) -> int:
    return sum(
        page.get("KeyCount", 0)
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    )


def _json_object(s3: Any, bucket: str, key: str) -> Any:
    try:
        return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    except s3.exceptions.NoSuchKey:
        return None


@dataclass
class BatchStatus:
    batch_id: str
    execution: str | None = None  # RUNNING, SUCCEEDED, FAILED, ...; None before the batch started
    error: str | None = None
    cause: str | None = None
    transform_job: str | None = None
    transform_status: str | None = None
    sent: int | None = None  # inputs handed to the transform job
    results: int = 0
    rejected: int = 0
    summary: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        """One line of progress."""
        parts = [f"batch {self.batch_id}: {self.execution or 'not started'}"]
        if self.transform_job:
            parts.append(f"transform job {self.transform_job} {self.transform_status or ''}".rstrip())
        if self.sent is not None:
            parts.append(f"{self.results} results + {self.rejected} rejected ({self.sent} sent to the model)")
        if self.error:
            parts.append(f"{self.error}: {self.cause}")
        return ", ".join(parts)


def batch_status(clients: ClientFactory, outputs: dict[str, str], batch_id: str) -> BatchStatus:
    """Where the batch stands, read from Step Functions, SageMaker and S3."""
    s3, sfn = clients("s3"), clients("stepfunctions")
    bucket = outputs["InferenceBucketName"]
    status = BatchStatus(batch_id)
    execution = find_execution(sfn, outputs["BatchTransformPipelineArn"], batch_id)
    if execution is None:
        return status
    status.execution = str(execution["status"])
    status.error, status.cause = execution.get("error"), execution.get("cause")
    status.transform_job = transform_job_name(sfn, execution["executionArn"])
    if status.transform_job:
        job = clients("sagemaker").describe_transform_job(TransformJobName=status.transform_job)
        status.transform_status = str(job["TransformJobStatus"])
    sent = _json_object(s3, bucket, layout.input_manifest_key(batch_id))
    status.sent = len(sent) - 1 if isinstance(sent, list) else None
    status.results = _count(s3, bucket, layout.results_prefix(batch_id))
    status.rejected = _count(s3, bucket, layout.rejected_prefix(batch_id))
    if status.execution != "RUNNING":
        status.summary = _json_object(s3, bucket, layout.summary_key(batch_id))
    return status
