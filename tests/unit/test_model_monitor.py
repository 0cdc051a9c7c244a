"""The monitor's pure parts: SageMaker capture records (the documented example and the records the
local endpoint writes parse with one parser), the named statistics against reference values, the
baseline schema and the drift report of a window (in-distribution, off-distribution, empty, small,
corrupt)."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from model_monitor import statistics
from model_monitor.baseline import CONFIDENCE_EDGES, Baseline, BaselineError, build_baseline
from model_monitor.capture import CaptureRecord, hour_prefix, parse_lines, parse_record, payload
from model_monitor.drift import DRIFT, INSUFFICIENT, NO_DATA, OK, Thresholds, drift_report, observe
from model_monitor.image_stats import FEATURES, ImageStatsError, image_stats

from dogbreed.bench.tiny_model import TINY_CLASSES, solid_color_jpeg
from tests.support.monitor_traffic import (
    VERSION,
    capture,
    in_distribution,
    jpeg,
    off_distribution,
    tiny_baseline,
)

# The capture record of the SageMaker developer guide's data capture example ("Capture data from
# real-time endpoint", https://docs.aws.amazon.com/sagemaker/latest/dg/model-monitor-data-capture-endpoint.html).
DOCUMENTED_EXAMPLE = Path(__file__).parents[1] / "fixtures" / "sagemaker_data_capture_example.jsonl"


def test_the_documented_capture_example_parses() -> None:
    parsed = parse_lines(DOCUMENTED_EXAMPLE.read_text().splitlines(), source=DOCUMENTED_EXAMPLE.name)

    assert parsed.errors == []
    (record,) = parsed.records
    assert record.inference_time == datetime(2019, 11, 22, 8, 24, 40, tzinfo=UTC)
    assert record.event_version == "0"
    assert record.endpoint_input is not None and record.endpoint_input.encoding == "CSV"
    assert record.endpoint_input.body().startswith(b"69,0,153.7,")
    assert record.endpoint_output is not None
    assert record.endpoint_output.content_type == "text/csv; charset=utf-8"
    assert record.endpoint_output.body() == b"0.0254181120544672"


def test_a_written_record_has_the_documented_shape_and_parses_back() -> None:
    when = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    record = CaptureRecord(
        event_id="e-1",
        inference_time=when,
        endpoint_input=payload("image/jpeg", "INPUT", b"\xff\xd8jpeg", as_text=False),
        endpoint_output=payload("application/json", "OUTPUT", b'{"a": 1}', as_text=True),
    )
    line = record.to_line()
    documented = json.loads(DOCUMENTED_EXAMPLE.read_text())

    raw = json.loads(line)
    assert raw.keys() == documented.keys()
    assert raw["captureData"]["endpointInput"].keys() == documented["captureData"]["endpointInput"].keys()
    assert raw["eventMetadata"].keys() == documented["eventMetadata"].keys()
    assert raw["captureData"]["endpointInput"]["encoding"] == "BASE64"
    assert raw["captureData"]["endpointOutput"]["encoding"] == "JSON"
    assert parse_record(line) == record


def test_lines_that_are_not_records_are_reported_and_the_others_kept() -> None:
    good = DOCUMENTED_EXAMPLE.read_text().strip()
    lines = [
        good,
        "{not json",
        '{"eventMetadata": {}}',
        "",
        json.dumps({"captureData": {}, "eventMetadata": {"inferenceTime": "yesterday"}}),
        good,
    ]

    parsed = parse_lines(lines, source="f.jsonl")

    assert len(parsed.records) == 2
    assert [error.split(":")[1] for error in parsed.errors] == ["2", "3", "5"]
    assert "not JSON" in parsed.errors[0]
    assert "ISO 8601" in parsed.errors[2]


def test_captures_of_an_hour_share_sagemakers_key_prefix() -> None:
    when = datetime(2026, 3, 4, 5, 59, 59, tzinfo=UTC)

    assert (
        hour_prefix("/data-capture/", "ep", "AllTraffic", when) == "data-capture/ep/AllTraffic/2026/03/04/05/"
    )
    assert hour_prefix("", "ep", "AllTraffic", when) == "ep/AllTraffic/2026/03/04/05/"


# --- statistics ---------------------------------------------------------------------------------


def test_psi_and_jensen_shannon_are_zero_for_equal_distributions_and_grow_with_the_shift() -> None:
    base = [0.25, 0.25, 0.25, 0.25]

    assert statistics.population_stability_index(base, [10, 10, 10, 10]) == pytest.approx(0.0)
    assert statistics.jensen_shannon(base, [1, 1, 1, 1]) == pytest.approx(0.0)
    assert statistics.jensen_shannon([1, 0], [0, 1]) == pytest.approx(1.0)
    # PSI by its definition: (0.4-0.25)ln(0.4/0.25) + (0.1-0.25)ln(0.1/0.25), twice
    expected = 2 * (0.15 * math.log(0.4 / 0.25) + -0.15 * math.log(0.1 / 0.25))
    assert statistics.population_stability_index(base, [4, 1, 4, 1]) == pytest.approx(expected)
    small = statistics.jensen_shannon(base, [3, 2, 3, 2])
    assert 0 < small < statistics.jensen_shannon(base, [4, 1, 4, 1])


def test_kolmogorov_smirnov_matches_the_reference_implementation() -> None:
    # Reference values: scipy.stats.ks_2samp(a, b, method="asymp") (scipy 1.17.1).
    a = [0.1 * i for i in range(40)]
    b = [0.1 * i + 0.8 for i in range(50)]
    result = statistics.kolmogorov_smirnov(a, b)
    assert result.statistic == pytest.approx(0.365)
    assert result.p_value == pytest.approx(0.0039098848656512475, rel=0.1)
    c = [float(i % 7) for i in range(30)]
    d = [float(i % 5) + 0.5 for i in range(200)]
    result = statistics.kolmogorov_smirnov(c, d)
    assert result.statistic == pytest.approx(0.2666666666666667)
    assert result.p_value == pytest.approx(0.04021637730721683, rel=0.1)
    assert statistics.kolmogorov_smirnov(a, a).p_value == pytest.approx(1.0)


def test_histogram_puts_out_of_range_values_in_the_edge_bins() -> None:
    assert statistics.histogram([-1, 0.0, 0.05, 0.95, 1.0, 2.0], CONFIDENCE_EDGES) == [
        3,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        3,
    ]


# --- image statistics and the baseline ---------------------------------------------------------


def test_image_stats_measure_size_aspect_and_brightness() -> None:
    white = jpeg(np.full((30, 60, 3), 255, dtype=np.uint8))

    stats = image_stats(white)

    assert set(stats) == set(FEATURES)
    assert (stats["width"], stats["height"], stats["aspect"]) == (60.0, 30.0, 2.0)
    assert stats["brightness"] == pytest.approx(255, abs=2)
    with pytest.raises(ImageStatsError):
        image_stats(b"not an image")


def baseline_for(images: list[bytes], confidences: list[float], targets: list[int]) -> Baseline:
    from model_monitor.baseline import confidence_counts

    return build_baseline(
        model_version=VERSION,
        classes=list(TINY_CLASSES),
        train_targets=targets,
        confidence_counts=confidence_counts(confidences),
        image_stats=[image_stats(image) for image in images],
        image_count=len(images),
    )


def test_the_baseline_round_trips_through_json_and_refuses_other_documents() -> None:
    baseline = baseline_for([solid_color_jpeg(0)], [0.9, 0.95, 0.5], [0, 1, 1, 2])

    assert Baseline.from_json(baseline.to_json()) == baseline
    assert baseline.class_priors == [0.25, 0.5, 0.25]
    assert baseline.confidence_histogram[9] == pytest.approx(2 / 3)
    with pytest.raises(BaselineError):
        Baseline.from_json('{"model_version": "x"}')
    broken = json.loads(baseline.to_json()) | {"class_priors": [1.0]}
    with pytest.raises(BaselineError, match="one class prior per class"):
        Baseline.from_json(json.dumps(broken))


# --- the drift report ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def baseline() -> Baseline:
    return tiny_baseline()


def test_held_out_traffic_from_the_training_distribution_shows_no_drift(baseline: Baseline) -> None:
    records = [capture(*in_distribution(seed)) for seed in range(60)]

    report = drift_report(baseline, map(observe, records))

    assert report.status == OK, report.reasons
    assert report.records == report.images == 60
    assert report.class_js is not None and report.class_js < Thresholds().class_js
    assert report.confidence_js is not None and report.confidence_js < Thresholds().confidence_js
    assert report.features_drifted == []


def test_off_distribution_traffic_drifts_on_every_signal(baseline: Baseline) -> None:
    records = [capture(*off_distribution(seed)) for seed in range(60)]

    report = drift_report(baseline, map(observe, records))

    assert report.status == DRIFT
    assert report.class_js is not None and report.class_js > Thresholds().class_js
    assert report.confidence_js is not None and report.confidence_js > Thresholds().confidence_js
    assert {"width", "height", "brightness"} <= set(report.features_drifted)
    assert len(report.reasons) == 3


def test_an_empty_window_is_no_data_and_a_small_one_insufficient(baseline: Baseline) -> None:
    empty = drift_report(baseline, [])
    small = drift_report(
        baseline, [observe(capture(*in_distribution(seed))) for seed in range(5)], corrupt_lines=2
    )

    assert empty.status == NO_DATA and empty.class_js is None
    assert "no captured prediction of model model-v1" in empty.reasons[0]
    assert small.status == INSUFFICIENT and small.records == 5 and small.class_js is None
    assert small.corrupt_lines == 2 and any("2 capture line(s)" in reason for reason in small.reasons)


def test_other_versions_and_unreadable_responses_are_counted_not_compared(baseline: Baseline) -> None:
    unreadable = capture(*in_distribution(1))
    unreadable = CaptureRecord(
        event_id="x",
        inference_time=unreadable.inference_time,
        endpoint_input=unreadable.endpoint_input,
        endpoint_output=payload("application/json", "OUTPUT", b"<html>oops</html>", as_text=True),
    )
    records = [capture(*in_distribution(0), version="model-v0"), unreadable]

    report = drift_report(baseline, map(observe, records))

    assert (report.other_versions, report.unreadable, report.records) == (1, 1, 0)
    assert report.status == NO_DATA
