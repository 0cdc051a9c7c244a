"""Cost estimate from template parameters and the price table.

One pipeline run = the tuning trials (MaxTuningJobs x one instance each) + the final job
(FinalTrainingInstanceCount instances, DDP) unless ReuseTuningArtifact skips it; each job's hours
are its epochs x minutes per epoch (prices.json assumptions) + start-up overhead. Managed spot
bills (1 - spot_savings) of that. Serving (`serving.py`): every billed call of a prediction on the
API and S3 paths, with an instance or a serverless endpoint, idle and at a number of predictions.
The drift monitor's month is `dogbreed.cost.monitor`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from dogbreed.cost.monitor import MonitorCost, drift_alarm_count, monitor_monthly_cost
from dogbreed.cost.prices import CostError, load_prices, price
from dogbreed.cost.serving import ServingCost, StackFacts, deployed_api_cost, serving_rows, stack_facts
from dogbreed.stack_target import samconfig_overrides
from dogbreed.template_stack import load_template, parameter_values

__all__ = ["CostError", "Estimate", "environment_parameters", "estimate", "load_prices", "pipeline_run_cost"]

# samconfig.toml environment per name shown to users.
ENVIRONMENTS: dict[str, str] = {"dev": "default", "prod": "prod"}
PREDICTIONS_PER_MONTH = 1_000_000


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
class Estimate:
    environment: str
    parameters: dict[str, str]
    run: PipelineRunCost
    deployed: ServingCost  # the API path on the deployed endpoint type, at PREDICTIONS_PER_MONTH
    comparison: list[ServingCost]  # every path and endpoint type, at PREDICTIONS_PER_MONTH
    monitor: MonitorCost  # the drift monitor at the template's schedule

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "environment": self.environment,
            "parameters": self.parameters,
            "run": {**asdict(self.run), "spot_saving_usd": self.run.spot_saving_usd},
            "deployed": self.deployed.to_dict(),
            "comparison": [row.to_dict() for row in self.comparison],
            "monitor": {**asdict(self.monitor), "total_usd": self.monitor.total_usd},
        }
        return data


def _epoch_minutes(prices: dict[str, Any], instance_type: str) -> float:
    return price(prices["assumptions"]["epoch_minutes"], instance_type, "epoch_minutes assumption")


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
    tuning_on_demand = tuning_hours * price(prices["sagemaker_training_per_hour"], tuning_type, "training")

    final_hours = 0.0
    final_on_demand = 0.0
    if not _bool(parameters["ReuseTuningArtifact"]):
        final_type = parameters["TrainingInstanceType"]
        count = int(parameters["FinalTrainingInstanceCount"])
        speedup = 1 + (count - 1) * float(assumptions["ddp_scaling_efficiency"])
        wall_hours = epochs * _epoch_minutes(prices, final_type) / 60 / speedup + overhead_hours
        final_hours = count * wall_hours
        final_on_demand = final_hours * price(prices["sagemaker_training_per_hour"], final_type, "training")

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


def estimate(
    environment: str,
    parameters: dict[str, str],
    prices: dict[str, Any],
    facts: StackFacts | None = None,
    predictions: int = PREDICTIONS_PER_MONTH,
) -> Estimate:
    template = load_template()
    facts = facts or stack_facts(template)
    return Estimate(
        environment=environment,
        parameters=parameters,
        run=pipeline_run_cost(parameters, prices),
        deployed=deployed_api_cost(parameters, prices, facts, predictions),
        comparison=serving_rows(parameters, prices, facts, predictions),
        monitor=monitor_monthly_cost(parameters, prices, alarms=drift_alarm_count(template)),
    )


def environment_parameters(environment: str) -> dict[str, str]:
    """template.yaml defaults with the samconfig.toml overrides of `dev` (default) or `prod`."""
    if environment not in ENVIRONMENTS:
        raise CostError(f"unknown environment {environment!r}; choose one of {', '.join(ENVIRONMENTS)}")
    return parameter_values(load_template(), samconfig_overrides(ENVIRONMENTS[environment]))
