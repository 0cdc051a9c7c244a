"""Cost estimate from template parameters and the price table.

One pipeline run = the tuning trials (MaxTuningJobs x one instance each) + the final job
(FinalTrainingInstanceCount instances, DDP) unless ReuseTuningArtifact skips it; each job's hours
are its epochs x minutes per epoch (prices.json assumptions) + start-up overhead. Managed spot
bills (1 - spot_savings) of that. The endpoint floor is EndpointMinInstances always on; a million
predictions add Lambda, API Gateway, DynamoDB and the instance-hours they keep busy at the scaling
target (SageMakerVariantInvocationsPerInstance is per minute). The drift monitor's month is
`dogbreed.cost.monitor`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from dogbreed.cost.monitor import MonitorCost, drift_alarm_count, monitor_monthly_cost
from dogbreed.stack_target import samconfig_overrides
from dogbreed.template_stack import load_template, parameter_values

PRICES_PATH = Path(__file__).with_name("prices.json")
# samconfig.toml environment per name shown to users.
ENVIRONMENTS: dict[str, str] = {"dev": "default", "prod": "prod"}


class CostError(ValueError):
    """A parameter names something the price table does not know."""


@dataclass(frozen=True)
class PipelineRunCost:
    tuning_instance_hours: float
    final_instance_hours: float
    tuning_usd: float
    final_usd: float
    step_functions_usd: float
    total_usd: float
    on_demand_total_usd: float

    @property
    def spot_saving_usd(self) -> float:
        return self.on_demand_total_usd - self.total_usd


@dataclass(frozen=True)
class PredictionCost:
    lambda_usd: float
    api_gateway_usd: float
    dynamodb_usd: float
    endpoint_usd: float
    data_processed_usd: float

    @property
    def total_usd(self) -> float:
        return (
            self.lambda_usd
            + self.api_gateway_usd
            + self.dynamodb_usd
            + self.endpoint_usd
            + self.data_processed_usd
        )


@dataclass(frozen=True)
class Estimate:
    environment: str
    parameters: dict[str, str]
    run: PipelineRunCost
    endpoint_floor_monthly_usd: float
    per_million_predictions: PredictionCost
    monitor_monthly: MonitorCost

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["run"]["spot_saving_usd"] = self.run.spot_saving_usd
        data["per_million_predictions"]["total_usd"] = self.per_million_predictions.total_usd
        data["monitor_monthly"]["total_usd"] = self.monitor_monthly.total_usd
        return data


def load_prices(path: Path = PRICES_PATH) -> dict[str, Any]:
    prices: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return prices


def _price(table: dict[str, float], instance_type: str, what: str) -> float:
    if instance_type not in table:
        raise CostError(f"no {what} price for {instance_type} in prices.json; add it")
    return float(table[instance_type])


def _epoch_minutes(prices: dict[str, Any], instance_type: str) -> float:
    return _price(prices["assumptions"]["epoch_minutes"], instance_type, "epoch_minutes assumption")


def _bool(value: str) -> bool:
    return value.strip().lower() == "true"


def pipeline_run_cost(parameters: dict[str, str], prices: dict[str, Any]) -> PipelineRunCost:
    assumptions = prices["assumptions"]
    overhead_hours = float(assumptions["job_overhead_minutes"]) / 60
    epochs = (float(parameters["TuningEpochsMin"]) + float(parameters["TuningEpochsMax"])) / 2
    spot_factor = 1 - float(assumptions["spot_savings"]) if _bool(parameters["UseSpotTraining"]) else 1.0

    tuning_type = parameters["TuningInstanceType"]
    trial_hours = epochs * _epoch_minutes(prices, tuning_type) / 60 + overhead_hours
    tuning_hours = int(parameters["MaxTuningJobs"]) * trial_hours
    tuning_on_demand = tuning_hours * _price(prices["sagemaker_training_per_hour"], tuning_type, "training")

    final_hours = 0.0
    final_on_demand = 0.0
    if not _bool(parameters["ReuseTuningArtifact"]):
        final_type = parameters["TrainingInstanceType"]
        count = int(parameters["FinalTrainingInstanceCount"])
        speedup = 1 + (count - 1) * float(assumptions["ddp_scaling_efficiency"])
        wall_hours = epochs * _epoch_minutes(prices, final_type) / 60 / speedup + overhead_hours
        final_hours = count * wall_hours
        final_on_demand = final_hours * _price(prices["sagemaker_training_per_hour"], final_type, "training")

    transitions = float(assumptions["pipeline_state_transitions"])
    step_functions = transitions / 1000 * float(prices["step_functions_per_thousand_transitions"])
    return PipelineRunCost(
        tuning_instance_hours=tuning_hours,
        final_instance_hours=final_hours,
        tuning_usd=tuning_on_demand * spot_factor,
        final_usd=final_on_demand * spot_factor,
        step_functions_usd=step_functions,
        total_usd=(tuning_on_demand + final_on_demand) * spot_factor + step_functions,
        on_demand_total_usd=tuning_on_demand + final_on_demand + step_functions,
    )


def endpoint_floor_monthly(parameters: dict[str, str], prices: dict[str, Any]) -> float:
    hourly = _price(prices["sagemaker_hosting_per_hour"], parameters["EndpointInstanceType"], "hosting")
    return int(parameters["EndpointMinInstances"]) * hourly * float(prices["assumptions"]["hours_per_month"])


def prediction_cost(
    parameters: dict[str, str], prices: dict[str, Any], predictions: int = 1_000_000
) -> PredictionCost:
    assumptions = prices["assumptions"]
    millions = predictions / 1_000_000
    gb_seconds = (
        predictions
        * float(assumptions["lambda_ms_per_prediction"])
        / 1000
        * (float(assumptions["lambda_memory_mb"]) / 1024)
    )
    lambda_usd = gb_seconds * float(prices["lambda_per_gb_second"]) + millions * float(
        prices["lambda_per_million_requests"]
    )
    api_usd = millions * float(prices["api_gateway_rest_per_million_requests"])
    dynamodb_usd = (
        millions
        * float(assumptions["dynamodb_writes_per_prediction"])
        * float(prices["dynamodb_per_million_write_units"])
    )
    hourly = _price(prices["sagemaker_hosting_per_hour"], parameters["EndpointInstanceType"], "hosting")
    busy_instance_hours = predictions / (float(parameters["ScalingTargetInvocationsPerInstance"]) * 60)
    data_gb = predictions * float(assumptions["image_kb"]) / 1024 / 1024
    return PredictionCost(
        lambda_usd=lambda_usd,
        api_gateway_usd=api_usd,
        dynamodb_usd=dynamodb_usd,
        endpoint_usd=busy_instance_hours * hourly,
        data_processed_usd=data_gb * float(prices["sagemaker_data_processed_per_gb"]),
    )


def estimate(environment: str, parameters: dict[str, str], prices: dict[str, Any]) -> Estimate:
    return Estimate(
        environment=environment,
        parameters=parameters,
        run=pipeline_run_cost(parameters, prices),
        endpoint_floor_monthly_usd=endpoint_floor_monthly(parameters, prices),
        per_million_predictions=prediction_cost(parameters, prices),
        monitor_monthly=monitor_monthly_cost(parameters, prices, alarms=drift_alarm_count(load_template())),
    )


def environment_parameters(environment: str) -> dict[str, str]:
    """template.yaml defaults with the samconfig.toml overrides of `dev` (default) or `prod`."""
    if environment not in ENVIRONMENTS:
        raise CostError(f"unknown environment {environment!r}; choose one of {', '.join(ENVIRONMENTS)}")
    return parameter_values(load_template(), samconfig_overrides(ENVIRONMENTS[environment]))


def format_table(estimates: list[Estimate], prices: dict[str, Any]) -> str:
    rows: list[tuple[str, list[str]]] = []

    def row(label: str, values: list[str]) -> None:
        rows.append((label, values))

    def usd(value: float) -> str:
        return f"${value:,.2f}"

    p = [e.parameters for e in estimates]
    row("tuning trials x instance", [f"{x['MaxTuningJobs']} x {x['TuningInstanceType']}" for x in p])
    row(
        "final job instances",
        [
            "reuse best trial"
            if _bool(x["ReuseTuningArtifact"])
            else f"{x['FinalTrainingInstanceCount']} x {x['TrainingInstanceType']}"
            for x in p
        ],
    )
    row("managed spot", ["yes" if _bool(x["UseSpotTraining"]) else "no" for x in p])
    row("tuning instance-hours", [f"{e.run.tuning_instance_hours:.1f}" for e in estimates])
    row("final instance-hours", [f"{e.run.final_instance_hours:.1f}" for e in estimates])
    row("pipeline run", [usd(e.run.total_usd) for e in estimates])
    row("  same run on demand", [usd(e.run.on_demand_total_usd) for e in estimates])
    row("  spot saving", [usd(e.run.spot_saving_usd) for e in estimates])
    row(
        "endpoint floor / month",
        [
            f"{usd(e.endpoint_floor_monthly_usd)} ({x['EndpointMinInstances']} x {x['EndpointInstanceType']})"
            for e, x in zip(estimates, p, strict=True)
        ],
    )
    row("per 1M predictions", [usd(e.per_million_predictions.total_usd) for e in estimates])
    row("  Lambda", [usd(e.per_million_predictions.lambda_usd) for e in estimates])
    row("  API Gateway", [usd(e.per_million_predictions.api_gateway_usd) for e in estimates])
    row("  DynamoDB", [usd(e.per_million_predictions.dynamodb_usd) for e in estimates])
    row("  endpoint (busy hours)", [usd(e.per_million_predictions.endpoint_usd) for e in estimates])
    row("  endpoint data", [usd(e.per_million_predictions.data_processed_usd) for e in estimates])
    row(
        "drift monitor / month",
        [
            f"{usd(e.monitor_monthly.total_usd)} (every {x['MonitorScheduleMinutes']} min)"
            for e, x in zip(estimates, p, strict=True)
        ],
    )
    row("  Lambda and S3", [usd(e.monitor_monthly.lambda_usd + e.monitor_monthly.s3_usd) for e in estimates])
    row(
        "  metrics and alarms",
        [usd(e.monitor_monthly.metrics_usd + e.monitor_monthly.alarms_usd) for e in estimates],
    )

    label_width = max(len(label) for label, _ in rows)
    widths = [
        max(len(e.environment), *(len(values[i]) for _, values in rows)) for i, e in enumerate(estimates)
    ]
    header = (
        " " * label_width
        + "  "
        + "  ".join(e.environment.rjust(w) for e, w in zip(estimates, widths, strict=True))
    )
    lines = [header]
    lines += [
        label.ljust(label_width) + "  " + "  ".join(v.rjust(w) for v, w in zip(values, widths, strict=True))
        for label, values in rows
    ]
    lines.append(
        f"List prices {prices['region']} as of {prices['as_of']} (src/dogbreed/cost/prices.json); "
        "workload assumptions in the same file."
    )
    return "\n".join(lines)
