"""The embedded metric format as the CloudWatch user guide specifies it ("Specification: Embedded
metric format"), read the way CloudWatch Logs reads it: the guide's own example, arrays of values,
several dimension sets, and lines that are ordinary log lines."""

from __future__ import annotations

import datetime as dt
import json

from dogbreed.local.lambda_runtime.embedded_metrics import metric_data

# The example of the specification page, as published.
DOCUMENTED_EXAMPLE = {
    "_aws": {
        "Timestamp": 1574109732004,
        "CloudWatchMetrics": [
            {
                "Namespace": "lambda-function-metrics",
                "Dimensions": [["functionVersion"]],
                "Metrics": [{"Name": "time", "Unit": "Milliseconds", "StorageResolution": 60}],
            }
        ],
    },
    "functionVersion": "$LATEST",
    "time": 100,
    "requestId": "989ffbf8-9ace-4817-a57c-e4dd734019ee",
}


def test_the_documented_example_is_one_datum_with_its_dimension_unit_and_time() -> None:
    [(namespace, datum)] = metric_data(json.dumps(DOCUMENTED_EXAMPLE))

    assert namespace == "lambda-function-metrics"
    assert datum == {
        "MetricName": "time",
        "Dimensions": [{"Name": "functionVersion", "Value": "$LATEST"}],
        "Value": 100.0,
        "Unit": "Milliseconds",
        "Timestamp": dt.datetime(2019, 11, 18, 20, 42, 12, 4000, tzinfo=dt.UTC),
    }


def test_an_array_gives_a_datum_per_value_and_each_dimension_set_its_own() -> None:
    line = {
        "_aws": {
            "Timestamp": 1574109732004,
            "CloudWatchMetrics": [
                {"Namespace": "N", "Dimensions": [["a"], ["a", "b"]], "Metrics": [{"Name": "m"}]}
            ],
        },
        "a": "1",
        "b": "2",
        "m": [1, 0.5],
    }

    data = metric_data(json.dumps(line))

    assert [(d["Value"], [x["Name"] for x in d["Dimensions"]]) for _, d in data] == [
        (1.0, ["a"]),
        (0.5, ["a"]),
        (1.0, ["a", "b"]),
        (0.5, ["a", "b"]),
    ]
    assert all("Unit" not in d for _, d in data)


def test_lines_that_are_not_embedded_metrics_give_nothing() -> None:
    broken = {**DOCUMENTED_EXAMPLE, "_aws": {"CloudWatchMetrics": []}}  # no Timestamp
    for line in ("plain text", '{"_aws": ', json.dumps({"level": "INFO"}), json.dumps(broken)):
        assert metric_data(line) == []
