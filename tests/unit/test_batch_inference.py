"""The batch functions' domain layer (functions/shared/batch_inference): the manifest's rules, and
PrepareBatch / SummarizeBatch over moto's S3 with outputs as Batch Transform writes them."""

from __future__ import annotations

import json
from typing import Any

import pytest
from batch_inference import layout
from batch_inference.manifest import ManifestError, parse_manifest
from batch_inference.prepare import MAX_PAYLOAD_BYTES, prepare_batch
from batch_inference.summary import summarize_batch
from botocore.exceptions import ClientError

BUCKET = "inference-bucket"


@pytest.mark.parametrize(
    ("document", "code"),
    [
        ([], "invalid_manifest"),
        ({"keys": []}, "empty_manifest"),
        ({"keys": ["a.jpg"], "prefix": "p/"}, "invalid_manifest"),
        ({"keys": ["s3://other/a.jpg"]}, "outside_bucket"),
        ({"keys": ["https://example.com/a.jpg"]}, "outside_bucket"),
        ({"prefix": f"s3://other/{BUCKET}/"}, "outside_bucket"),
        ({"keys": ["batches/x/results/a.jpg.out"]}, "batch_output_as_input"),
        ({"keys": ["photos/"]}, "invalid_manifest"),
        ({"keys": ["a.jpg"], "top_k": 11}, "invalid_manifest"),
        ({"keys": ["a.jpg"], "top_k": True}, "invalid_manifest"),
        ({"keys": ["a.jpg"], "model": "no spaces allowed"}, "invalid_manifest"),
        ({"keys": ["a.jpg"], "topk": 3}, "invalid_manifest"),
    ],
)
def test_a_manifest_that_cannot_run_is_refused_with_a_code(document: Any, code: str) -> None:
    with pytest.raises(ManifestError) as refused:
        parse_manifest(document, bucket=BUCKET)
    assert refused.value.code == code


def test_keys_in_the_bucket_are_normalised_and_deduplicated_with_defaults() -> None:
    manifest = parse_manifest({"keys": ["a.jpg", f"s3://{BUCKET}/a.jpg", "b.png"]}, bucket=BUCKET)
    assert (manifest.keys, manifest.prefix, manifest.top_k, manifest.model) == (
        ("a.jpg", "b.png"),
        None,
        5,
        "deployed",
    )


@pytest.fixture
def s3(moto_session: Any) -> Any:
    client = moto_session.client("s3")
    client.create_bucket(Bucket=BUCKET)
    return client


def _put(s3: Any, key: str, body: bytes) -> None:
    s3.put_object(Bucket=BUCKET, Key=key, Body=body)


def _keys(s3: Any, prefix: str) -> set[str]:
    return {item["Key"] for item in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])}


def test_prepare_writes_the_transform_manifest_and_rejects_what_cannot_be_sent(s3: Any) -> None:
    # Given a good object, an empty one, one over the payload cap and one missing key
    _put(s3, "p/good.jpg", b"jpeg bytes")
    _put(s3, "p/empty.jpg", b"")
    _put(s3, "p/huge.jpg", b"x" * (MAX_PAYLOAD_BYTES + 1))
    keys = ["p/good.jpg", "p/empty.jpg", "p/huge.jpg", "p/gone.jpg"]
    _put(s3, layout.manifest_key("b1"), json.dumps({"keys": keys, "top_k": 3}).encode())

    result = prepare_batch(s3, BUCKET, "b1")

    assert result["valid"] and (result["inputs"], result["accepted"], result["rejected"]) == (4, 1, 3)
    manifest = json.loads(s3.get_object(Bucket=BUCKET, Key=layout.input_manifest_key("b1"))["Body"].read())
    assert manifest == [{"prefix": f"s3://{BUCKET}/"}, "p/good.jpg"]
    codes = {
        key: json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())["code"]
        for key in _keys(s3, layout.rejected_prefix("b1"))
    }
    assert codes == {
        layout.rejected_key("b1", "p/empty.jpg"): "empty_object",
        layout.rejected_key("b1", "p/huge.jpg"): "payload_too_large",
        layout.rejected_key("b1", "p/gone.jpg"): "not_found",
    }


def test_prepare_answers_invalid_for_a_missing_manifest_or_an_empty_prefix(s3: Any) -> None:
    assert prepare_batch(s3, BUCKET, "none")["error"] == "missing_manifest"
    _put(s3, layout.manifest_key("b2"), json.dumps({"prefix": "nothing/"}).encode())
    assert prepare_batch(s3, BUCKET, "b2") == {
        "valid": False,
        "error": "empty_manifest",
        "reason": "no object under the prefix 'nothing/': nothing to classify",
    }
    _put(s3, layout.manifest_key("b3"), b"{not json")
    assert prepare_batch(s3, BUCKET, "b3")["error"] == "invalid_manifest"


def test_a_prefix_leaves_out_batch_outputs(s3: Any) -> None:
    _put(s3, "a.jpg", b"1")
    _put(s3, layout.result_key("old", "a.jpg"), b"{}")
    _put(s3, layout.manifest_key("b4"), json.dumps({"prefix": ""}).encode())

    result = prepare_batch(s3, BUCKET, "b4")

    assert (result["accepted"], result["rejected"]) == (1, 0)


class WithoutListBucket:
    """S3 as a caller without an unconditioned s3:ListBucket sees it: a GET of a missing key is 403
    AccessDenied, not 404 NoSuchKey (the GetObject API reference, "Permissions")."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def get_object(self, **request: Any) -> Any:
        try:
            return self._client.get_object(**request)
        except ClientError as error:
            if error.response["Error"]["Code"] != "NoSuchKey":
                raise
            denied = {"Error": {"Code": "AccessDenied", "Message": "Access Denied"}}
            raise ClientError(denied, "GetObject") from error


@pytest.mark.parametrize("may_list_bucket", [True, False])
def test_summary_settles_every_input_as_one_result_or_one_rejection(s3: Any, may_list_bucket: bool) -> None:
    # Given what PrepareBatch and Batch Transform left: two predictions, one rejection line, one input
    # without output, and one input PrepareBatch rejected
    sent = ["p/a.jpg", "p/b.jpg", "p/bad.jpg", "p/lost.jpg"]
    _put(s3, layout.input_manifest_key("b5"), json.dumps([{"prefix": f"s3://{BUCKET}/"}, *sent]).encode())
    for key, breed in (("p/a.jpg", "Beagle"), ("p/b.jpg", "Beagle")):
        line = {
            "model_version": "v1",
            "predictions": [{"breed": breed, "class_index": 1, "probability": 0.9}],
        }
        _put(s3, layout.result_key("b5", key), (json.dumps(line) + "\n").encode())
    _put(
        s3, layout.result_key("b5", "p/bad.jpg"), b'{"rejected": {"code": "not_an_image", "message": "no"}}\n'
    )
    prepare_record = {
        "input": f"s3://{BUCKET}/p/gone.jpg",
        "code": "not_found",
        "message": "m",
        "stage": "prepare",
    }
    _put(s3, layout.rejected_key("b5", "p/gone.jpg"), json.dumps(prepare_record).encode())
    job = {
        "TransformJobName": "batch-x",
        "TransformResources": {"InstanceType": "ml.c5.xlarge", "InstanceCount": 1},
        "TransformStartTime": 1_764_900_000_000,
        "TransformEndTime": 1_764_900_042_000,
    }

    summary = summarize_batch(
        s3 if may_list_bucket else WithoutListBucket(s3),
        BUCKET,
        "b5",
        model_version="v1",
        started_at="2026-12-05T07:00:00.000Z",
        job=job,
    )

    # Then results/ holds the predictions only and rejected/ one record per other input
    assert _keys(s3, layout.results_prefix("b5")) == {
        layout.result_key("b5", k) for k in ("p/a.jpg", "p/b.jpg")
    }
    assert _keys(s3, layout.rejected_prefix("b5")) == {
        layout.rejected_key("b5", k) for k in ("p/bad.jpg", "p/lost.jpg", "p/gone.jpg")
    }
    assert (summary["inputs"], summary["results"], summary["rejected"]) == (5, 2, 3)
    assert summary["breeds"] == {"Beagle": 2}
    assert summary["transform_job"]["transform_seconds"] == 42.0
    assert summary["transform_job"]["instance_seconds"] == 42.0
    written = json.loads(s3.get_object(Bucket=BUCKET, Key=layout.summary_key("b5"))["Body"].read())
    assert {item["code"] for item in written["rejections"]} == {"not_an_image", "no_output", "not_found"}
