"""The real training pipeline (template.yaml + statemachine/) on moto's Step Functions interpreter,
with the in-memory SageMaker of `fake_sagemaker` and the real ValidateDataset handler in the local
Lambda runtime's worker processes (they reach this process's moto through a moto server on loopback:
mock_aws shares its state with a moto server in the same process).

    with lambda_runtime() as lambdas, pipeline_stack(FakeSageMaker(), lambdas, ApprovalMode="manual") as p:
        p.upload(dataset_dir)
        execution = p.run()            # started as EventBridge starts it, waited for

Every run's visited states are added to `VISITED_STATES`, so a test can check that the tests of a
module reached every state of the definition.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
from moto import mock_aws
from moto.server import ThreadedMotoServer

from dogbreed.aws import stepfunctions as sfn_rules
from dogbreed.local import moto_shim
from dogbreed.local.cloud.stack import LOCAL_FUNCTION_ENVIRONMENT, function_spec
from dogbreed.local.lambda_runtime.runtime import LambdaRuntime
from dogbreed.local.template_resources import create_resources
from dogbreed.template_stack import TemplateStack
from tests.functional.fake_sagemaker import FakeSageMaker

DATASET_ID = "synth-tiny"
PIPELINE_RESOURCES = {"DataBucket", "RunsTable", "ModelPackageGroup", "AlarmTopic", "TrainingPipeline"}
# Settings that make a local run quick: no waiting between polls and lock attempts.
FAST = {"EndpointPollSeconds": "0", "DeployLockPollSeconds": "0"}
VISITED_STATES: set[str] = set()
# Task requests of the module's executions that botocore's input shapes refuse.
REQUEST_PROBLEMS: list[str] = []


class Pipeline:
    def __init__(
        self, stack: TemplateStack, session: boto3.Session, arn: str, backend: FakeSageMaker
    ) -> None:
        self.stack = stack
        self.session = session
        self.arn = arn
        self.backend = backend
        self.data_bucket = stack.physical_name("DataBucket")
        self.runs_table = session.resource("dynamodb").Table(stack.physical_name("RunsTable"))
        self.endpoint_name = stack.stack_name
        self.group = stack.stack_name
        self.code_key = f"code/{stack.parameters['TrainingCodeVersion']}/sourcedir.tar.gz"
        self.sfn = session.client("stepfunctions")

    def upload(self, root: Path, dataset_id: str = DATASET_ID, *, code: bool = True) -> None:
        s3 = self.session.client("s3")
        if code:
            s3.put_object(Bucket=self.data_bucket, Key=self.code_key, Body=b"sourcedir")
        for path in sorted(root.rglob("*")):
            if path.is_file():
                key = f"datasets/{dataset_id}/{path.relative_to(root).as_posix()}"
                s3.put_object(Bucket=self.data_bucket, Key=key, Body=path.read_bytes())

    def start(self, dataset_id: str = DATASET_ID, *, key: str | None = None, payload: Any = None) -> str:
        """Start the way EventBridge does (an S3 Object Created event), or with `payload` by hand."""
        event = payload
        if event is None:
            event = {
                "source": "aws.s3",
                "detail-type": "Object Created",
                "detail": {
                    "bucket": {"name": self.data_bucket},
                    "object": {"key": key or f"datasets/{dataset_id}/manifest.json"},
                },
            }
        arn: str = self.sfn.start_execution(stateMachineArn=self.arn, input=json.dumps(event))["executionArn"]
        return arn

    def wait(self, execution_arn: str, *, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            described: dict[str, Any] = self.sfn.describe_execution(executionArn=execution_arn)
            if described["status"] != "RUNNING":
                VISITED_STATES.update(self.visited(execution_arn))
                return described
            time.sleep(0.02)
        raise AssertionError(f"the execution did not finish within {timeout} s")

    def run(self, dataset_id: str = DATASET_ID, **start: Any) -> dict[str, Any]:
        return self.wait(self.start(dataset_id, **start))

    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = self.sfn.get_execution_history(
            executionArn=execution_arn, maxResults=1000
        )["events"]
        return events

    def entered_states(self, execution_arn: str) -> list[str]:
        """The states the execution entered, in order."""
        return [
            event["stateEnteredEventDetails"]["name"]
            for event in self.history(execution_arn)
            if "stateEnteredEventDetails" in event
        ]

    def visited(self, execution_arn: str) -> set[str]:
        return set(self.entered_states(execution_arn))

    def wait_for_state(self, execution_arn: str, state: str, *, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if state in self.visited(execution_arn):
                VISITED_STATES.add(state)
                return
            time.sleep(0.02)
        raise AssertionError(f"{state} was not entered within {timeout} s")

    def run_record(self, run_id: str) -> dict[str, Any]:
        item: dict[str, Any] = self.runs_table.get_item(Key={"run_id": run_id})["Item"]
        return {**item, "detail": json.loads(item["detail"])}

    def run_records(self) -> list[dict[str, Any]]:
        items = self.runs_table.scan()["Items"]
        return [{**item, "detail": json.loads(item["detail"])} for item in items if "detail" in item]

    def lock_item(self) -> dict[str, Any] | None:
        item: dict[str, Any] | None = self.runs_table.get_item(Key={"run_id": "LOCK#endpoint"}).get("Item")
        return item


@contextmanager
def lambda_runtime() -> Iterator[LambdaRuntime]:
    """The pipeline's function in worker processes, reaching moto through a server on loopback."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        with LambdaRuntime(aws_environment={"AWS_ENDPOINT_URL": f"http://{host}:{port}"}) as runtime:
            yield runtime
    finally:
        server.stop()


# One boto3 session for every stack of the process, also as boto3's default session inside each mock
# (the one moto's interpreter makes its task clients from): moto resets the default session for every
# mock, and each new session parses the service models again, which was about half of a test's time.
# Its credentials are the tests' fake ones (`aws_env`), resolved when its first client is made.
SESSION = boto3.Session(region_name="us-east-1")


@contextmanager
def pipeline_stack(backend: FakeSageMaker, lambdas: LambdaRuntime, **parameters: str) -> Iterator[Pipeline]:
    stack = TemplateStack.load(parameters={**FAST, **parameters})
    session = SESSION
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        boto3.DEFAULT_SESSION = session  # moto's patch puts its own value back when the mock ends
        lambdas.configure(
            function_spec(stack, f, LOCAL_FUNCTION_ENVIRONMENT)
            for f in stack.lambda_functions()
            if f["logical_id"] == "ValidateDatasetFunction"
        )
        with moto_shim.installed(backend, lambdas=lambdas):
            created = create_resources(stack, session, only=PIPELINE_RESOURCES, sagemaker=backend)
            yield Pipeline(stack, session, created.state_machine_arns["TrainingPipeline"], backend)


def check_requests(pipeline: Pipeline, execution_arn: str) -> None:
    """Every Task request of the execution validates against botocore's input shape."""
    for event in pipeline.history(execution_arn):
        details = event.get("taskScheduledEventDetails")
        if details:
            resource = f"arn:aws:states:::{details['resourceType']}:{details['resource']}"
            problems = sfn_rules.task_request_problems(resource, json.loads(details["parameters"]))
            if problems:
                REQUEST_PROBLEMS.append(f"{resource}: {problems}")
    assert not REQUEST_PROBLEMS, REQUEST_PROBLEMS


def succeeded_output(execution: dict[str, Any]) -> dict[str, Any]:
    assert execution["status"] == "SUCCEEDED", (execution.get("error"), execution.get("cause"))
    output: dict[str, Any] = json.loads(execution["output"])
    return output


def failed_cause(execution: dict[str, Any], error: str) -> str:
    assert (execution["status"], execution.get("error")) == ("FAILED", error), execution.get("cause")
    cause: str = execution["cause"]
    return cause


def seed_production(
    pipeline: Pipeline,
    test_acc: float,
    version: str = "dogbreed-0c10ca1d-260101000000-aaa",
    instance_type: str | None = None,
    *,
    serverless: bool = False,
) -> str:
    """An earlier run's model serving on the endpoint: on the stack's instance type by default, on
    `instance_type`, or serverless."""
    return pipeline.backend.register_serving_package(
        pipeline.endpoint_name,
        version,
        test_acc,
        pipeline.group,
        None if serverless else instance_type or pipeline.stack.parameters["EndpointInstanceType"],
    )
