"""The Predictions table's item: the one place that knows its attribute names and types. The store
writes `to_item`, and every reader (the store's GET, the benchmarks' stand-in, the tests' own reads
of the table) decodes with `from_item`.

    to_item(StoredPrediction(record, result_key="results/api/<id>.json", input_kind="image",
                             expires_at=1767225600))
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

from prediction.models import Prediction, PredictionRecord

# The table's partition key (template.yaml: PredictionsTable) and its TTL attribute.
KEY_ATTRIBUTE = "prediction_id"
TTL_ATTRIBUTE = "expires_at"
# An input reference (a URL, an s3:// URI) is kept up to this many characters.
MAX_INPUT_REF = 2048
# What counting the table against S3 needs of an item (the load test's reconciliation): a scan
# projected on these reads none of the predictions.
REFERENCE_ATTRIBUTES = (KEY_ATTRIBUTE, "result_key", "input_ref")


@dataclass(frozen=True)
class StoredPrediction:
    """A prediction as the table holds it: the record, where its JSON result is, what it was asked on."""

    record: PredictionRecord
    result_key: str
    input_kind: str  # prediction.models.InputKind: url | image | s3_uri | binary | s3_event
    expires_at: int  # epoch seconds
    input_ref: str = ""


class ItemReference(NamedTuple):
    """Which prediction an item is, where its result is and what it was asked on."""

    prediction_id: str
    result_key: str
    input_ref: str


def item_key(prediction_id: str) -> dict[str, Any]:
    return {KEY_ATTRIBUTE: {"S": prediction_id}}


def to_item(stored: StoredPrediction) -> dict[str, Any]:
    record = stored.record
    item: dict[str, Any] = {
        **item_key(record.prediction_id),
        "model_version": {"S": record.model_version},
        "predictions": {"L": [_prediction_attr(p) for p in record.predictions]},
        "created_at": {"S": record.created_at.isoformat()},
        "source": {"S": record.source},
        "input_kind": {"S": stored.input_kind},
        "result_key": {"S": stored.result_key},
        TTL_ATTRIBUTE: {"N": str(stored.expires_at)},
    }
    if stored.input_ref:
        item["input_ref"] = {"S": stored.input_ref[:MAX_INPUT_REF]}
    return item


def reference_from_item(item: dict[str, Any]) -> ItemReference:
    """The item's `REFERENCE_ATTRIBUTES` (all that a projected scan returns)."""
    input_ref = item.get("input_ref", {}).get("S", "")
    return ItemReference(item[KEY_ATTRIBUTE]["S"], item["result_key"]["S"], input_ref)


def from_item(item: dict[str, Any]) -> StoredPrediction:
    reference = reference_from_item(item)
    record = PredictionRecord(
        prediction_id=reference.prediction_id,
        model_version=item["model_version"]["S"],
        predictions=[_prediction_from_attr(value["M"]) for value in item["predictions"]["L"]],
        created_at=datetime.fromisoformat(item["created_at"]["S"]),
        source=item["source"]["S"],
    )
    return StoredPrediction(
        record=record,
        result_key=reference.result_key,
        input_kind=item["input_kind"]["S"],
        expires_at=int(item[TTL_ATTRIBUTE]["N"]),
        input_ref=reference.input_ref,
    )


def _prediction_attr(prediction: Prediction) -> dict[str, Any]:
    return {
        "M": {
            "breed": {"S": prediction.breed},
            "class_index": {"N": str(prediction.class_index)},
            # Decimal(str(x)) keeps the float's shortest repr (DynamoDB numbers are decimal).
            "probability": {"N": str(Decimal(str(prediction.probability)))},
        }
    }


def _prediction_from_attr(attr: dict[str, Any]) -> Prediction:
    return Prediction(
        breed=attr["breed"]["S"],
        class_index=int(attr["class_index"]["N"]),
        probability=float(attr["probability"]["N"]),
    )
