"""The per-path AWS cost of `dogbreed bench batch` (dogbreed.cost.batch) on a hand-computed case, and
the benchmark's side-by-side report."""

from __future__ import annotations

from typing import Any

import pytest

from dogbreed.bench.batch_bench import BatchBenchReport, PathRun, format_report
from dogbreed.cost.batch import (
    BATCH_FUNCTION_GB_SECONDS_PER_MILLION,
    BATCH_STATE_TRANSITIONS,
    batch_path_cost,
    drop_path_cost,
)
from dogbreed.cost.estimate import environment_parameters, load_prices
from dogbreed.cost.serving import S3_PATH, endpoint_row, stack_facts
from dogbreed.template_stack import load_template

PRICES: dict[str, Any] = {
    "sagemaker_hosting_per_hour": {"ml.h": 0.5, "ml.b": 0.2},
    "sagemaker_data_processed_per_gb": 0.01,
    "lambda_per_gb_second": 0.00001,
    "lambda_per_million_requests": 0.2,
    "api_gateway_rest_per_million_requests": 3.5,
    "dynamodb_per_million_write_units": 1.0,
    "s3_per_thousand_put": 0.005,
    "s3_per_thousand_get": 0.0004,
    "step_functions_per_thousand_transitions": 0.025,
    "assumptions": {
        "job_overhead_minutes": 6,
        "lambda_memory_mb": 1024,
        "lambda_ms_per_prediction": 100,
        "image_kb": 1024,
        "dynamodb_writes_per_prediction": 2,
    },
}


def test_the_drop_path_is_the_s3_rows_billed_calls_plus_the_hours_the_images_keep_the_endpoint_busy() -> None:
    parameters, prices = environment_parameters("dev"), load_prices()
    facts = stack_facts(load_template())
    row = endpoint_row(S3_PATH, "instance")(parameters, prices, facts, 1_000_000)

    cost = drop_path_cost(parameters, prices, facts)

    calls = sum(item.usd for item in row.variable if not item.name.startswith("endpoint"))
    hourly = prices["sagemaker_hosting_per_hour"][parameters["EndpointInstanceType"]]
    busy_hours = 1e6 / (float(parameters["ScalingTargetInvocationsPerInstance"]) * 60)
    assert cost.usd == pytest.approx(calls + busy_hours * hourly)
    # the result object's PUT and the dropped image's are both billed
    assert "S3 PUT $10.00" in cost.detail and cost.usd_per_million == pytest.approx(cost.usd)


def test_the_batch_path_bills_instance_hours_at_the_rate_plus_start_up_puts_and_functions() -> None:
    cost = batch_path_cost(
        PRICES, instance_type="ml.b", instance_count=2, images_per_second_per_instance=20.0
    )

    fleet = (1e6 / 20 / 3600 + 2 * 0.1) * 0.2
    puts = (1e6 + 1) / 1000 * 0.005
    gets = 1e6 / 1000 * 0.0004
    functions = BATCH_FUNCTION_GB_SECONDS_PER_MILLION * 0.00001
    assert cost.usd == pytest.approx(fleet + puts + gets + functions + BATCH_STATE_TRANSITIONS / 1000 * 0.025)


def test_the_template_and_price_table_know_the_batch_instance_type() -> None:
    parameters = environment_parameters("dev")
    prices = load_prices()

    cost = batch_path_cost(
        prices,
        instance_type=parameters["BatchInstanceType"],
        instance_count=int(parameters["BatchInstanceCount"]),
        images_per_second_per_instance=10.0,
    )

    assert cost.usd_per_million > 0


def test_the_report_puts_the_paths_side_by_side_with_ratios() -> None:
    report = BatchBenchReport(
        drop=PathRun("S3 drop", 100, 20.0, 100),
        batch=PathRun("Batch Transform", 100, 5.0, 100),
        drop_cost=drop_path_cost(environment_parameters("dev"), load_prices()),
        batch_cost=batch_path_cost(
            PRICES, instance_type="ml.b", instance_count=1, images_per_second_per_instance=20
        ),
    )

    text = format_report(report)

    header, _rule, drop, batch = text.splitlines()[:4]
    assert header.split()[:2] == ["path", "images"]
    assert [drop.split()[-2], batch.split()[-2]] == ["1.00x", "4.00x"]  # the "vs drop" column
    assert "cheaper" in text and report.to_dict()["batch"]["images_per_second"] == 20.0
