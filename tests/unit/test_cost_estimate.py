"""`dogbreed cost` arithmetic on a small, hand-computed case, and the command's dev/prod table."""

from __future__ import annotations

import json
from typing import Any

import pytest

from dogbreed.cli import main
from dogbreed.cost.estimate import (
    CostError,
    endpoint_floor_monthly,
    environment_parameters,
    load_prices,
    pipeline_run_cost,
    prediction_cost,
)
from dogbreed.cost.monitor import drift_alarm_count, monitor_monthly_cost

PRICES: dict[str, Any] = {
    "sagemaker_training_per_hour": {"ml.t": 2.0},
    "sagemaker_hosting_per_hour": {"ml.h": 0.5},
    "sagemaker_data_processed_per_gb": 0.01,
    "lambda_per_gb_second": 0.00001,
    "lambda_per_million_requests": 0.2,
    "api_gateway_rest_per_million_requests": 3.5,
    "dynamodb_per_million_write_units": 1.0,
    "step_functions_per_thousand_transitions": 0.025,
    "s3_per_thousand_get": 0.4,
    "s3_per_thousand_put": 5.0,
    "cloudwatch_metric_per_month": 0.3,
    "cloudwatch_put_metric_data_per_thousand": 0.01,
    "cloudwatch_alarm_per_month": 0.1,
    "assumptions": {
        "epoch_minutes": {"ml.t": 6.0},
        "job_overhead_minutes": 6,
        "ddp_scaling_efficiency": 1.0,
        "spot_savings": 0.75,
        "pipeline_state_transitions": 40,
        "lambda_memory_mb": 1024,
        "lambda_ms_per_prediction": 100,
        "image_kb": 1024,
        "dynamodb_writes_per_prediction": 2,
        "hours_per_month": 730,
        "monitor_seconds_per_run": 10,
        "monitor_memory_mb": 512,
        "capture_files_per_hour": 2,
        "monitor_model_versions": 1,
    },
}
PARAMETERS = {
    "TuningEpochsMin": "8",
    "TuningEpochsMax": "12",  # 10 epochs on average
    "TuningInstanceType": "ml.t",
    "TrainingInstanceType": "ml.t",
    "MaxTuningJobs": "3",
    "FinalTrainingInstanceCount": "2",
    "UseSpotTraining": "true",
    "ReuseTuningArtifact": "false",
    "EndpointInstanceType": "ml.h",
    "EndpointMinInstances": "2",
    "ScalingTargetInvocationsPerInstance": "1000",
    "MonitorScheduleMinutes": "30",
}


def test_pipeline_run_arithmetic() -> None:
    run = pipeline_run_cost(PARAMETERS, PRICES)
    # a trial: 10 epochs x 6 min = 1 h, + 0.1 h overhead; 3 trials = 3.3 instance-hours
    assert run.tuning_instance_hours == pytest.approx(3.3)
    # final: 2 instances at perfect scaling -> 0.5 h wall + 0.1 h overhead, x 2 instances = 1.2 h
    assert run.final_instance_hours == pytest.approx(1.2)
    on_demand_training = (3.3 + 1.2) * 2.0  # $9.00
    step_functions = 40 / 1000 * 0.025  # $0.001
    assert run.on_demand_total_usd == pytest.approx(on_demand_training + step_functions)
    assert run.total_usd == pytest.approx(on_demand_training * 0.25 + step_functions)
    assert run.spot_saving_usd == pytest.approx(on_demand_training * 0.75)


def test_reusing_the_tuning_artifact_and_on_demand() -> None:
    run = pipeline_run_cost({**PARAMETERS, "ReuseTuningArtifact": "true", "UseSpotTraining": "false"}, PRICES)
    assert run.final_instance_hours == 0
    assert run.total_usd == pytest.approx(3.3 * 2.0 + 0.001)
    assert run.spot_saving_usd == pytest.approx(0)


def test_endpoint_floor_and_prediction_arithmetic() -> None:
    assert endpoint_floor_monthly(PARAMETERS, PRICES) == pytest.approx(2 * 0.5 * 730)
    cost = prediction_cost(PARAMETERS, PRICES)
    assert cost.lambda_usd == pytest.approx(1_000_000 * 0.1 * 1.0 * 0.00001 + 0.2)  # $1.20
    assert cost.api_gateway_usd == pytest.approx(3.5)
    assert cost.dynamodb_usd == pytest.approx(2.0)
    # 1M invocations at 1000 per instance-minute = 1000 instance-minutes = 16.67 h x $0.50
    assert cost.endpoint_usd == pytest.approx(1_000_000 / 60_000 * 0.5)
    assert cost.data_processed_usd == pytest.approx(1_000_000 / 1024 * 0.01)
    assert cost.total_usd == pytest.approx(
        cost.lambda_usd
        + cost.api_gateway_usd
        + cost.dynamodb_usd
        + cost.endpoint_usd
        + cost.data_processed_usd
    )


def test_monitor_month_arithmetic() -> None:
    cost = monitor_monthly_cost(PARAMETERS, PRICES, alarms=3)
    runs = 730 * 2  # every 30 minutes
    assert cost.runs_per_month == runs
    assert cost.lambda_usd == pytest.approx(runs * 10 * 0.5 * 0.00001 + runs / 1e6 * 0.2)
    files = 730 * 2
    assert cost.s3_usd == pytest.approx((files + runs * 2) / 1000 * 0.4 + files / 1000 * 5.0)
    # 8 metrics, per endpoint and per endpoint and model version
    assert cost.metrics_usd == pytest.approx(16 * 0.3 + runs / 1000 * 0.01)
    assert cost.alarms_usd == pytest.approx(0.3)
    assert cost.total_usd == pytest.approx(cost.lambda_usd + cost.s3_usd + cost.metrics_usd + cost.alarms_usd)


def test_the_monitor_month_counts_the_templates_drift_alarms() -> None:
    from dogbreed.template_stack import load_template

    assert drift_alarm_count(load_template()) == 3


def test_unknown_instance_type_is_a_clear_error() -> None:
    with pytest.raises(CostError, match=r"ml\.nope"):
        pipeline_run_cost({**PARAMETERS, "TuningInstanceType": "ml.nope"}, PRICES)


def test_environments_read_template_defaults_and_samconfig_overrides() -> None:
    dev, prod = environment_parameters("dev"), environment_parameters("prod")
    assert dev["Stage"] == "dev" and prod["Stage"] == "prod"
    assert int(dev["MaxTuningJobs"]) < int(prod["MaxTuningJobs"])
    assert dev["TuningInstanceType"] == "ml.g4dn.xlarge"  # a template default
    prices = load_prices()
    assert prices["as_of"] and prices["region"] == "us-east-1"


def test_cost_command_prints_dev_and_prod(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cost"]) == 0
    out = capsys.readouterr().out
    assert "dev" in out.splitlines()[0] and "prod" in out.splitlines()[0]
    for label in (
        "pipeline run",
        "same run on demand",
        "endpoint floor / month",
        "per 1M predictions",
        "drift monitor / month",
    ):
        assert label in out
    assert main(["cost", "--env", "prod", "--json", "--set", "MaxTuningJobs=1"]) == 0
    (prod,) = json.loads(capsys.readouterr().out)
    assert prod["parameters"]["MaxTuningJobs"] == "1"
    assert prod["monitor_monthly"]["total_usd"] > 0
