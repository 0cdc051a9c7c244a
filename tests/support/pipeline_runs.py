"""Training pipeline runs on the shared local cloud: a run started as a user starts one (the training
code, then a tiny synthetic dataset with manifest.json last), its execution and its run records, read
by the test itself."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from tests.support.local_cloud import CloudWorld


def upload_training_run(world: CloudWorld, tmp_path: Path, name: str = "faults") -> str:
    """The training code and a tiny synthetic dataset (manifest.json last: it starts the pipeline);
    returns the dataset id, `<name>-<8 hex>`, new for each run."""
    from dogbreed.data.synth import synthesize
    from dogbreed.local.cloud.demo_pipeline import pack_sourcedir, upload_dataset

    dataset_id = f"{name}-{uuid.uuid4().hex[:8]}"
    dataset = synthesize(
        tmp_path / dataset_id, classes=2, per_class=6, size=32, seed=0, dataset_id=dataset_id
    )
    s3 = world.client("s3")
    code_bucket, _, code_key = world.outputs["TrainingCodeS3Uri"].removeprefix("s3://").partition("/")
    s3.put_object(Bucket=code_bucket, Key=code_key, Body=pack_sourcedir())
    upload_dataset(s3, dataset, world.outputs["DataBucketName"], dataset_id)
    return dataset_id


def execution_for(world: CloudWorld, dataset_id: str) -> dict[str, Any] | None:
    """DescribeExecution of the pipeline's execution that the dataset started, None before it starts."""
    sfn = world.client("stepfunctions")
    for item in sfn.list_executions(stateMachineArn=world.outputs["TrainingPipelineArn"])["executions"]:
        described: dict[str, Any] = sfn.describe_execution(executionArn=item["executionArn"])
        if f"datasets/{dataset_id}/" in described.get("input", ""):
            return described
    return None


def run_records(world: CloudWorld, dataset_id: str) -> list[dict[str, Any]]:
    """The runs table's items of the runs of `dataset_id` (read with the test's own scan)."""
    items = world.client("dynamodb").scan(TableName=world.outputs["RunsTableName"])["Items"]
    return [
        {name: next(iter(value.values())) for name, value in item.items()}
        for item in items
        if item.get("dataset_id", {}).get("S") == dataset_id
    ]


def execution_history(world: CloudWorld, execution_arn: str) -> list[dict[str, Any]]:
    """The execution's history events so far, oldest first."""
    paginator = world.client("stepfunctions").get_paginator("get_execution_history")
    return [event for page in paginator.paginate(executionArn=execution_arn) for event in page["events"]]


def entered_states(world: CloudWorld, execution_arn: str) -> list[str]:
    """The states the execution entered so far, in order."""
    return [
        event["stateEnteredEventDetails"]["name"]
        for event in execution_history(world, execution_arn)
        if "stateEnteredEventDetails" in event
    ]
