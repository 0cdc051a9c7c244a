"""`dogbreed cost`'s tables: the pipeline run and the deployed API path per environment side by side,
then, per environment, every way of serving (path x endpoint type) idle and at 1M predictions."""

from __future__ import annotations

from typing import Any

from dogbreed.cost.estimate import Estimate
from dogbreed.terminal import text_table


def _usd(value: float) -> str:
    return f"${value:,.2f}"


def _yes(value: str) -> bool:
    return value.strip().lower() == "true"


def _columns(header: list[str], rows: list[tuple[str, list[str]]]) -> list[str]:
    """A label column, then one right-aligned column per header."""
    table = text_table(
        ["", *header], [(label, *values) for label, values in rows], right=range(1, len(header) + 1)
    )
    return table.splitlines()


def endpoint_description(parameters: dict[str, str]) -> str:
    if parameters.get("EndpointType", "instance") == "serverless":
        return f"serverless {parameters['ServerlessMemorySizeInMB']} MB"
    return f"{parameters['EndpointMinInstances']} x {parameters['EndpointInstanceType']}"


def environments_table(estimates: list[Estimate]) -> list[str]:
    rows: list[tuple[str, list[str]]] = []
    p = [e.parameters for e in estimates]
    trials = [f"{x['MaxTuningJobs']} x {x['TuningInstanceType']}" for x in p]
    rows.append(("tuning trials x instance", trials))
    rows.append(
        (
            "final job instances",
            [
                "reuse best trial"
                if _yes(x["ReuseTuningArtifact"])
                else f"{x['FinalTrainingInstanceCount']} x {x['TrainingInstanceType']}"
                for x in p
            ],
        )
    )
    rows.append(("managed spot", ["yes" if _yes(x["UseSpotTraining"]) else "no" for x in p]))
    rows.append(("tuning instance-hours", [f"{e.run.tuning_instance_hours:.1f}" for e in estimates]))
    rows.append(("final instance-hours", [f"{e.run.final_instance_hours:.1f}" for e in estimates]))
    rows.append(("pipeline run", [_usd(e.run.total_usd) for e in estimates]))
    rows.append(("  same run on demand", [_usd(e.run.on_demand_total_usd) for e in estimates]))
    rows.append(("  spot saving", [_usd(e.run.spot_saving_usd) for e in estimates]))
    rows.append(("endpoint", [endpoint_description(x) for x in p]))
    rows.append(("idle / month", [_usd(e.deployed.idle_usd) for e in estimates]))
    for name in dict.fromkeys(item.name for e in estimates for item in e.deployed.fixed):
        rows.append((f"  {name}", [_usd(_usd_of(e.deployed.fixed, name)) for e in estimates]))
    predictions = estimates[0].deployed.predictions
    rows.append((f"{predictions:,} API predictions", [_usd(e.deployed.variable_usd) for e in estimates]))
    names = list(dict.fromkeys(item.name for e in estimates for item in e.deployed.variable))
    for name in names:
        rows.append((f"  {name}", [_usd(_usd_of(e.deployed.variable, name)) for e in estimates]))
    rows.append(("month with them", [_usd(e.deployed.total_usd) for e in estimates]))
    rows.append(
        (
            "drift monitor / month",
            [
                f"{_usd(e.monitor.total_usd)} (every {x['MonitorScheduleMinutes']} min)"
                for e, x in zip(estimates, p, strict=True)
            ],
        )
    )
    rows.append(("  Lambda and S3", [_usd(e.monitor.lambda_usd + e.monitor.s3_usd) for e in estimates]))
    rows.append(
        ("  metrics and alarms", [_usd(e.monitor.metrics_usd + e.monitor.alarms_usd) for e in estimates])
    )
    return _columns([e.environment for e in estimates], rows)


def _usd_of(items: Any, name: str) -> float:
    return sum(item.usd for item in items if item.name == name)


def comparison_table(estimate: Estimate) -> list[str]:
    predictions = estimate.comparison[0].predictions if estimate.comparison else 0
    rows = [
        (
            f"  {row.label}",
            [_usd(row.idle_usd), _usd(row.total_usd), f"${row.variable_usd / predictions * 1e6:,.2f}"],
        )
        for row in estimate.comparison
    ]
    title = f"{estimate.environment}: serving per month"
    return [title, *_columns(["idle", f"{predictions:,} predictions", "per 1M above idle"], rows)]


def format_report(estimates: list[Estimate], prices: dict[str, Any]) -> str:
    lines = environments_table(estimates)
    for estimate in estimates:
        lines += ["", *comparison_table(estimate)]
    lines += [
        "",
        f"List prices {prices['region']} as of {prices['as_of']} (src/dogbreed/cost/prices.json); "
        "workload assumptions in the same file; free tiers not subtracted; traffic spread evenly.",
    ]
    return "\n".join(lines)
