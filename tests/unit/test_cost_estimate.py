"""`dogbreed cost` arithmetic on small, hand-computed cases (a pipeline run; every billed call of a
prediction on each path and endpoint type, idle and under traffic; provisioned concurrency), the
price table's age warning, and the command's dev/prod report."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from dogbreed.cli import main
from dogbreed.cost.estimate import CostError, environment_parameters, estimate, load_prices, pipeline_run_cost
from dogbreed.cost.monitor import drift_alarm_count, monitor_monthly_cost
from dogbreed.cost.prices import price_age_warning
from dogbreed.cost.serving import API_PATH, ROW_BUILDERS, S3_PATH, ServingCost, StackFacts, endpoint_row

PRICES: dict[str, Any] = {
    "as_of": "2025-01-15",
    "max_age_days": 180,
    "sagemaker_training_per_hour": {"ml.t": 2.0},
    "sagemaker_hosting_per_hour": {"ml.h": 0.5},
    "sagemaker_data_processed_per_gb": 0.01,
    "sagemaker_serverless_per_gb_second": 0.00002,
    "lambda_per_gb_second": 0.00001,
    "lambda_per_million_requests": 0.2,
    "lambda_provisioned_concurrency_per_gb_second": 0.000004,
    "lambda_provisioned_duration_per_gb_second": 0.000008,
    "api_gateway_rest_per_million_requests": 3.5,
    "dynamodb_per_million_write_units": 1.0,
    "s3_per_thousand_put": 0.005,
    "s3_per_thousand_get": 0.0004,
    "step_functions_per_thousand_transitions": 0.025,
    "xray_per_million_traces_recorded": 5.0,
    "cloudwatch_logs_ingestion_per_gb": 0.5,
    "cloudwatch_alarm_per_month": 0.1,
    "kms_key_per_month": 1.0,
    "kms_per_ten_thousand_requests": 0.03,
    "cloudwatch_metric_per_month": 0.3,
    "cloudwatch_put_metric_data_per_thousand": 0.01,
    "assumptions": {
        "epoch_minutes": {"ml.t": 6.0},
        "job_overhead_minutes": 6,
        "ddp_scaling_efficiency": 1.0,
        "spot_savings": 0.75,
        "pipeline_state_transitions": 40,
        "lambda_ms_per_prediction": 100,
        "image_kb": 1023,
        "response_kb": 1,  # 1 MB in + out per prediction
        "serverless_inference_ms": 500,
        "log_kb_per_prediction": 1024,  # 1 MB of logs per prediction
        "xray_reservoir_per_second": 0,  # every trace sampled at 5%
        "xray_sampling_rate": 0.05,
        "kms_requests_per_table_hour": 10,
        "hours_per_month": 730,
        "monitor_seconds_per_run": 10,
        "monitor_memory_mb": 512,
        "capture_files_per_hour": 2,
        "monitor_model_versions": 1,
    },
}
FACTS = StackFacts(alarms=10, instance_alarms=1, kms_keys=1, dynamodb_tables=2, lambda_memory_mb=1024)
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
    "ServerlessMemorySizeInMB": "2048",
    "Stage": "dev",
    "ApiProvisionedConcurrency": "0",
    "MonitorScheduleMinutes": "30",
}
MILLION = 1_000_000


def _usd(cost: ServingCost, name: str) -> float:
    return sum(item.usd for item in (*cost.fixed, *cost.variable) if item.name == name)


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


def test_the_idle_stack_bills_its_alarms_keys_and_the_endpoint_floor() -> None:
    instance = endpoint_row(API_PATH, "instance")(PARAMETERS, PRICES, FACTS, 0)
    serverless = endpoint_row(API_PATH, "serverless")(PARAMETERS, PRICES, FACTS, 0)

    stack = 10 * 0.1 + 1.0 + 2 * 10 * 730 * 0.03 / 10_000  # alarms, the key, DynamoDB key requests
    assert serverless.idle_usd == pytest.approx(stack) and serverless.variable_usd == 0
    assert _usd(instance, "endpoint floor") == pytest.approx(2 * 0.5 * 730)
    # ... and the instance endpoint's own silence alarm
    assert instance.idle_usd == pytest.approx(stack + 0.1 + 730) and instance.variable_usd == 0


def test_every_billed_call_of_an_api_prediction_is_counted() -> None:
    cost = endpoint_row(API_PATH, "serverless")(PARAMETERS, PRICES, FACTS, MILLION)

    assert _usd(cost, "API Gateway requests") == pytest.approx(3.5)
    assert _usd(cost, "Lambda requests") == pytest.approx(0.2)
    assert _usd(cost, "Lambda duration") == pytest.approx(MILLION * 0.1 * 1.0 * 0.00001)  # 1 GB x 100 ms
    assert _usd(cost, "S3 PUT") == pytest.approx(5.0)  # the result object
    assert _usd(cost, "S3 GET") == 0
    assert _usd(cost, "DynamoDB writes") == pytest.approx(1.0)  # the record
    assert _usd(cost, "SageMaker data in + out") == pytest.approx(MILLION / 1024 * 0.01)
    assert _usd(cost, "X-Ray traces") == pytest.approx(0.05 * 5.0)
    assert _usd(cost, "CloudWatch Logs") == pytest.approx(MILLION / 1024 * 0.5)
    # 500 ms at 2 GB per prediction
    assert _usd(cost, "serverless inference") == pytest.approx(MILLION * 0.5 * 2 * 0.00002)
    assert cost.variable_usd == pytest.approx(sum(item.usd for item in cost.variable))


def test_an_s3_drop_adds_the_uploaded_object_its_read_and_the_idempotency_writes() -> None:
    api = endpoint_row(API_PATH, "instance")(PARAMETERS, PRICES, FACTS, MILLION)
    drop = endpoint_row(S3_PATH, "instance")(PARAMETERS, PRICES, FACTS, MILLION)

    assert _usd(drop, "API Gateway requests") == 0
    assert _usd(drop, "S3 PUT") == pytest.approx(2 * 5.0)
    assert _usd(drop, "S3 GET") == pytest.approx(0.4)
    assert _usd(drop, "DynamoDB writes") == pytest.approx(3 * 1.0)
    assert drop.variable_usd - api.variable_usd == pytest.approx(-3.5 + 5.0 + 0.4 + 2.0)


def test_instances_above_the_floor_are_billed_only_when_traffic_needs_them() -> None:
    # 2 instances x 730 h answer 2 x 730 x 60 x 1000 = 87.6M predictions a month at the target
    within = endpoint_row(API_PATH, "instance")(PARAMETERS, PRICES, FACTS, 80_000_000)
    beyond = endpoint_row(API_PATH, "instance")(PARAMETERS, PRICES, FACTS, 120_000_000)

    assert _usd(within, "endpoint instances above the floor") == 0
    hours_needed = 120_000_000 / 60_000
    assert _usd(beyond, "endpoint instances above the floor") == pytest.approx((hours_needed - 1460) * 0.5)


def test_prods_provisioned_concurrency_is_billed_idle_and_lowers_the_api_duration_price() -> None:
    prod = {**PARAMETERS, "Stage": "prod", "ApiProvisionedConcurrency": "3"}
    dev_with_the_setting = {**PARAMETERS, "ApiProvisionedConcurrency": "3"}  # the template applies it in prod

    api = endpoint_row(API_PATH, "serverless")(prod, PRICES, FACTS, MILLION)
    drop = endpoint_row(S3_PATH, "serverless")(prod, PRICES, FACTS, MILLION)
    dev = endpoint_row(API_PATH, "serverless")(dev_with_the_setting, PRICES, FACTS, MILLION)

    assert _usd(api, "Lambda provisioned concurrency") == pytest.approx(3 * 1.0 * 730 * 3600 * 0.000004)
    assert _usd(api, "Lambda duration") == pytest.approx(MILLION * 0.1 * 0.000008)
    assert _usd(drop, "Lambda duration") == pytest.approx(MILLION * 0.1 * 0.00001)  # not the API alias
    assert _usd(dev, "Lambda provisioned concurrency") == 0


def test_every_row_builder_gives_a_row_and_the_estimate_carries_them() -> None:
    result = estimate("dev", {**PARAMETERS, "EndpointType": "serverless"}, PRICES, FACTS)

    assert [row.label for row in result.comparison] == [
        "API, ml.h endpoint",
        "API, serverless endpoint",
        "S3 drop, ml.h endpoint",
        "S3 drop, serverless endpoint",
    ]
    assert len(result.comparison) == len(ROW_BUILDERS)
    assert result.deployed.label == "API, serverless endpoint"
    assert json.loads(json.dumps(result.to_dict()))["deployed"]["total_usd"] == pytest.approx(
        result.deployed.total_usd
    )


def test_old_prices_are_warned_about() -> None:
    assert price_age_warning(PRICES, dt.date(2025, 7, 14)) is None  # 180 days
    warning = price_age_warning(PRICES, dt.date(2025, 7, 15))
    assert warning and "2025-01-15" in warning and "181 days" in warning


def test_monitor_month_arithmetic() -> None:
    cost = monitor_monthly_cost(PARAMETERS, PRICES, alarms=3)
    runs = 730 * 2  # every 30 minutes
    assert cost.runs_per_month == runs
    assert cost.lambda_usd == pytest.approx(runs * 10 * 0.5 * 0.00001 + runs / 1e6 * 0.2)
    files = 730 * 2
    assert cost.s3_usd == pytest.approx((files + runs * 2) / 1000 * 0.0004 + files / 1000 * 0.005)
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
    captured = capsys.readouterr()
    out = captured.out
    if price_age_warning(load_prices()):
        assert "warning: the prices were taken" in captured.err
    assert "dev" in out.splitlines()[0] and "prod" in out.splitlines()[0]
    for label in (
        "pipeline run",
        "same run on demand",
        "idle / month",
        "S3 PUT",
        "serverless endpoint",
        "drift monitor / month",
    ):
        assert label in out
    assert main(["cost", "--env", "prod", "--json", "--set", "MaxTuningJobs=1"]) == 0
    (prod,) = json.loads(capsys.readouterr().out)
    assert prod["parameters"]["MaxTuningJobs"] == "1"
    assert prod["monitor"]["total_usd"] > 0
