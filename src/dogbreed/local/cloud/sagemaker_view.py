"""What `dogbreed local status` and the demo show of the local SageMaker, read through SageMaker's own
API (the same calls a user makes with boto3 or the AWS CLI): the newest jobs and every endpoint."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError


def overview(sagemaker: Any, *, limit: int = 15) -> dict[str, list[dict[str, Any]]]:
    """The newest training and tuning jobs and every endpoint (DescribeEndpoint), from a boto3 client."""
    newest = {"SortBy": "CreationTime", "SortOrder": "Descending", "MaxResults": limit}
    endpoints = []
    for page in sagemaker.get_paginator("list_endpoints").paginate():
        for summary in page["Endpoints"]:
            try:
                endpoints.append(sagemaker.describe_endpoint(EndpointName=summary["EndpointName"]))
            except ClientError:  # deleted since it was listed
                continue
    return {
        "training_jobs": sagemaker.list_training_jobs(**newest)["TrainingJobSummaries"],
        "tuning_jobs": sagemaker.list_hyper_parameter_tuning_jobs(**newest)[
            "HyperParameterTuningJobSummaries"
        ],
        "endpoints": endpoints,
    }


def endpoint_summary(described: dict[str, Any], fleet: dict[str, Any] | None = None) -> str:
    """`dogbreed-endpoint InService config dogbreed-... | AllTraffic: 1/1 instance(s), 12 invocations`
    from a DescribeEndpoint answer (and the emulator's fleet status, for the invocation counts)."""
    invocations = {v["VariantName"]: v.get("Invocations", 0) for v in (fleet or {}).get("Variants", [])}
    workers = {v["VariantName"]: len(v.get("Instances", [])) for v in (fleet or {}).get("Variants", [])}

    def capacity(variant: dict[str, Any]) -> str:
        serverless = variant.get("CurrentServerlessConfig")
        if serverless:  # no instance count: memory, max concurrency and the workers warm now
            warm = f", {workers[variant['VariantName']]} warm" if variant["VariantName"] in workers else ""
            memory, concurrency = serverless["MemorySizeInMB"], serverless["MaxConcurrency"]
            return f"serverless {memory} MB x {concurrency} concurrent{warm}"
        return f"{variant.get('CurrentInstanceCount')}/{variant.get('DesiredInstanceCount')} instance(s)"

    variants = ", ".join(
        f"{variant['VariantName']}: {capacity(variant)}"
        + (
            f", {invocations[variant['VariantName']]} invocations"
            if variant["VariantName"] in invocations
            else ""
        )
        for variant in described.get("ProductionVariants", [])
    )
    failure = f" ({described['FailureReason']})" if described.get("FailureReason") else ""
    summary = (
        f"{described['EndpointName']} {described['EndpointStatus']}{failure} "
        f"config {described['EndpointConfigName']} | {variants or 'no instances'}"
    )
    pending = described.get("PendingDeploymentSummary")
    return f"{summary}\n    {pending_summary(pending, fleet)}" if pending else summary


def pending_summary(pending: dict[str, Any], fleet: dict[str, Any] | None = None) -> str:
    """`updating to dogbreed-2 (CANARY): Baking, traffic new 50% / old 50%, alarms: x OK` from
    DescribeEndpoint's PendingDeploymentSummary and the emulator's view of the rollout (the split)."""
    rollout = (fleet or {}).get("PendingDeployment") or {}
    stages = [
        status
        for variant in pending.get("ProductionVariants", [])
        for status in variant.get("VariantStatus", [])
    ]
    stage = stages[0]["Status"] if stages else "Creating"
    line = f"updating to {pending['EndpointConfigName']}"
    if rollout:
        share = float(rollout["NewFleetTrafficShare"])
        alarms = ", ".join(f"{name} {state}" for name, state in rollout.get("Alarms", {}).items())
        line += f" ({rollout['TrafficRouting']}): {stage}, traffic new {share:.0%} / old {1 - share:.0%}" + (
            f", alarms: {alarms}" if alarms else ""
        )
    elif stages:
        line += f": {stage} ({stages[0].get('StatusMessage', '')})"
    return line
