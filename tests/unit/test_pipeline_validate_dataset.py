"""The pipeline's one function: ValidateDataset, the dataset gate over an S3 prefix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from dataset_gate import DatasetRequest, DatasetRequestError, validate_dataset

from dogbreed.data.synth import synthesize

BUCKET = "data-bucket"


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthesize(
        tmp_path_factory.mktemp("ds") / "ds-1", classes=2, per_class=4, size=32, dataset_id="ds-1"
    )


@pytest.fixture
def s3(moto_session: Any) -> Any:
    client = moto_session.client("s3")
    client.create_bucket(Bucket=BUCKET)
    return client


def _upload(s3, root: Path, dataset_id: str) -> None:
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        s3.put_object(
            Bucket=BUCKET,
            Key=f"datasets/{dataset_id}/{path.relative_to(root).as_posix()}",
            Body=path.read_bytes(),
        )


def test_a_valid_dataset_passes_with_its_counts(s3, dataset: Path) -> None:
    _upload(s3, dataset, "ds-1")
    result = validate_dataset(s3, DatasetRequest(bucket=BUCKET, dataset_id="ds-1"), workers=2)
    assert result["valid"] is True, result["summary"]
    assert result["report"]["num_classes"] == 2
    assert result["report"]["split_counts"]["train"] == 8


def test_a_manifest_under_another_prefix_is_rejected_readably(s3, dataset: Path) -> None:
    _upload(s3, dataset, "copied-elsewhere")
    result = validate_dataset(s3, DatasetRequest(bucket=BUCKET, dataset_id="copied-elsewhere"), workers=2)
    assert result["valid"] is False
    assert "manifest.json names dataset 'ds-1'" in result["summary"]


def test_an_empty_prefix_is_rejected(s3) -> None:
    result = validate_dataset(s3, DatasetRequest(bucket=BUCKET, dataset_id="nothing"), workers=2)
    assert result["valid"] is False
    assert "holds no files" in result["summary"]


@pytest.mark.parametrize(
    "event",
    [
        {"bucket": "other-bucket", "dataset_id": "ds-1"},
        {"bucket": BUCKET, "dataset_id": "../etc"},
        {"bucket": BUCKET, "dataset_id": "ds-1", "prefix": "models/"},
    ],
)
def test_requests_outside_the_data_bucket_datasets_are_refused(event: dict[str, str]) -> None:
    with pytest.raises(DatasetRequestError):
        DatasetRequest.parse(event, allowed_bucket=BUCKET)
