"""The Predictions table's item mapper (`prediction.item`): what the store writes decodes back to the
same prediction, and its key and TTL attributes are the table's in template.yaml."""

from __future__ import annotations

from datetime import UTC, datetime

from prediction.item import (
    KEY_ATTRIBUTE,
    MAX_INPUT_REF,
    REFERENCE_ATTRIBUTES,
    TTL_ATTRIBUTE,
    StoredPrediction,
    from_item,
    item_key,
    reference_from_item,
    to_item,
)
from prediction.models import Prediction, PredictionRecord

from dogbreed.template_stack import load_template

RECORD = PredictionRecord(
    prediction_id="3f2b8a4e-6c1d-4e7a-9b0f-5d2c1a8e7f60",
    model_version="dogbreed-7",
    predictions=[
        Prediction(breed="Beagle", class_index=14, probability=0.8125),
        Prediction(breed="Boxer", class_index=38, probability=0.1),
    ],
    created_at=datetime(2026, 12, 6, 7, 30, 15, 123456, tzinfo=UTC),
    source="api",
)


def test_an_item_decodes_to_the_prediction_it_was_written_from() -> None:
    stored = StoredPrediction(
        RECORD, "results/api/x.json", "url", 1_798_000_000, "https://images.example/d.jpg"
    )

    item = to_item(stored)

    assert from_item(item) == stored
    projected = {name: item[name] for name in REFERENCE_ATTRIBUTES}  # what a projected scan returns
    assert reference_from_item(projected) == (RECORD.prediction_id, "results/api/x.json", stored.input_ref)
    assert set(item) == {  # the layout docs/api.md documents
        *("prediction_id", "model_version", "predictions", "created_at", "source"),
        *("input_kind", "input_ref", "result_key", "expires_at"),
    }
    assert item["predictions"]["L"][1]["M"]["probability"] == {"N": "0.1"}  # the float's shortest repr
    assert {key: item[key] for key in item_key(RECORD.prediction_id)} == item_key(RECORD.prediction_id)


def test_an_item_without_an_input_reference_has_no_such_attribute_and_long_ones_are_cut() -> None:
    assert "input_ref" not in to_item(StoredPrediction(RECORD, "results/a.json", "image", 1))
    long = "https://images.example/" + "a" * 3000
    assert (
        len(to_item(StoredPrediction(RECORD, "results/a.json", "url", 1, long))["input_ref"]["S"])
        == MAX_INPUT_REF
    )


def test_the_key_and_ttl_attributes_are_the_tables() -> None:
    table = load_template()["Resources"]["PredictionsTable"]["Properties"]

    assert [key["AttributeName"] for key in table["KeySchema"]] == [KEY_ATTRIBUTE]
    assert table["TimeToLiveSpecification"]["AttributeName"] == TTL_ATTRIBUTE
    assert table["TimeToLiveSpecification"]["Enabled"] is True
