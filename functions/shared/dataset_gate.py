"""The pipeline's dataset gate: the shared `dataset_check` rules applied to an S3 prefix, plus the
one rule only the pipeline knows (the manifest names the dataset its prefix says).

An invalid dataset is an answer, not an error: the state machine records the readable summary as
the run's failure cause. Storage errors (no access, no such bucket) raise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dataset_check.checker import check_entries
from dataset_check.entries import iter_s3_prefix
from dataset_check.manifest import DATASET_ID_PATTERN

DATASETS_PREFIX = "datasets/"
# Step Functions state payloads are capped at 256 KB: the result carries a bounded report.
MAX_ISSUES_IN_RESULT = 25
MAX_SUMMARY_CHARS = 4000
DEFAULT_WORKERS = 16


class DatasetRequestError(ValueError):
    """The request names a bucket or prefix this function must not check."""


@dataclass(frozen=True)
class DatasetRequest:
    bucket: str
    dataset_id: str

    @property
    def prefix(self) -> str:
        return f"{DATASETS_PREFIX}{self.dataset_id}/"

    @classmethod
    def parse(cls, event: dict[str, Any], *, allowed_bucket: str) -> DatasetRequest:
        bucket = event.get("bucket")
        dataset_id = event.get("dataset_id")
        prefix = event.get("prefix")
        if bucket != allowed_bucket:
            raise DatasetRequestError(f"bucket {bucket!r} is not the data bucket")
        if not isinstance(dataset_id, str) or not DATASET_ID_PATTERN.match(dataset_id):
            raise DatasetRequestError(f"dataset_id {dataset_id!r} must match {DATASET_ID_PATTERN.pattern}")
        request = cls(bucket=bucket, dataset_id=dataset_id)
        if prefix is not None and prefix != request.prefix:
            raise DatasetRequestError(f"prefix {prefix!r} is not {request.prefix!r}")
        return request


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 20] + "\n... (truncated)"


def validate_dataset(
    s3_client: Any, request: DatasetRequest, *, workers: int = DEFAULT_WORKERS
) -> dict[str, Any]:
    """`{"valid": bool, "summary": str, "report": {...}}` for s3://bucket/datasets/<dataset_id>/."""
    source = f"s3://{request.bucket}/{request.prefix}"
    report = check_entries(
        iter_s3_prefix(s3_client, request.bucket, request.prefix), source=source, workers=workers
    )
    problems: list[str] = []
    if report.files_checked == 0:
        problems.append(f"{source} holds no files")
    if report.manifest_id is None and report.files_checked:
        problems.append(f"{source}manifest.json is missing or unreadable")
    elif report.manifest_id is not None and report.manifest_id != request.dataset_id:
        problems.append(
            f"manifest.json names dataset {report.manifest_id!r} but sits under {request.prefix!r}"
        )
    valid = report.ok and not problems
    text = report.to_text(max_per_kind=5)
    if problems:
        text = "\n".join([*problems, text])
    full = report.to_dict()
    compact = {
        key: full[key]
        for key in ("source", "num_classes", "split_counts", "files_checked", "manifest_id", "error_count")
    }
    compact["warning_count"] = full["warning_count"]
    compact["issues"] = full["issues"][:MAX_ISSUES_IN_RESULT]
    compact["pipeline_problems"] = problems
    return {"valid": valid, "summary": _truncate(text, MAX_SUMMARY_CHARS), "report": compact}
