"""Deploying template.yaml into the local cloud and routing its events (moto in-process, no servers;
the failing function runs in a Lambda runtime worker).

- the stack comes from the template: a changed template changes the deployed rules and state machine;
- S3 "Object Created" events reach the template's targets through moto's EventBridge pattern matching;
- a Lambda target that keeps failing is retried EventInvokeConfig.MaximumRetryAttempts times, then
  Lambda's invocation record of the event lands in the function's OnFailure queue.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

from dogbreed import TEMPLATE_PATH
from dogbreed.local.cloud.events import EventRouter
from dogbreed.local.cloud.stack import deploy, load_stack
from dogbreed.local.lambda_runtime.destinations import AwsDestinations
from dogbreed.local.lambda_runtime.runtime import LambdaRuntime


def _rule_pattern(aws: Any, name: str) -> dict[str, Any]:
    pattern: dict[str, Any] = json.loads(aws.client("events").describe_rule(Name=name)["EventPattern"])
    return pattern


def test_a_changed_template_changes_the_local_cloud(moto_session: Any, tmp_path: Path) -> None:
    first = deploy(moto_session, load_stack())
    rule = next(route.rule_name for route in first.routes if route.target_kind == "lambda")
    assert _rule_pattern(moto_session, rule)["detail"]["object"]["key"] == [{"prefix": "incoming/"}]
    assert "TrainingPipeline" in first.created

    changed = tmp_path / "template.yaml"
    changed.write_text(
        TEMPLATE_PATH.read_text()
        .replace("key: [{prefix: incoming/}]", "key: [{prefix: uploads/}]")
        .replace("ENDPOINT_NAME: !Ref AWS::StackName", "ENDPOINT_NAME: other-endpoint")
    )
    second = deploy(moto_session, load_stack({"AccuracyThreshold": "0.93"}, path=changed))

    assert _rule_pattern(moto_session, rule)["detail"]["object"]["key"] == [{"prefix": "uploads/"}]
    assert "TrainingPipeline" in second.updated and not second.created
    definition = moto_session.client("stepfunctions").describe_state_machine(
        stateMachineArn=second.state_machine_arns["TrainingPipeline"]
    )["definition"]
    assert "$number('0.93')" in definition and "${" not in definition
    assert second.function("PredictS3Function").environment["ENDPOINT_NAME"] == "other-endpoint"


def test_a_failing_lambda_target_is_retried_then_its_record_reaches_the_on_failure_queue(
    moto_session: Any, tmp_path: Path
) -> None:
    # Given the S3-drop function (EventInvokeConfig: 2 retries, OnFailure queue) with a handler that fails
    deployment = deploy(moto_session, load_stack())
    route = next(route for route in deployment.routes if route.target_kind == "lambda")
    function = deployment.function("PredictS3Function")
    config = function.event_invoke_config
    assert config.maximum_retry_attempts == 2 and config.on_failure
    (tmp_path / "failing_handler.py").write_text(
        "import json\nfrom pathlib import Path\n\n\ndef handler(event, context):\n"
        f"    with Path({str(tmp_path / 'calls')!r}).open('a') as calls:\n"
        "        calls.write(event['id'] + '\\n')\n"
        "    raise RuntimeError('endpoint down')\n"
    )
    failing = dataclasses.replace(
        function, code_dir=tmp_path, handler="failing_handler.handler", environment={}
    )
    with LambdaRuntime(destinations=AwsDestinations(moto_session), async_backoff_scale=0.0001) as lambdas:
        lambdas.configure([failing])
        router = EventRouter(moto_session, lambdas=lambdas, retry_delay_seconds=0.01)
        router.configure(deployment)
        bucket = deployment.physical_names["InferenceBucket"]

        # When an image is dropped
        moto_session.client("s3").put_object(Bucket=bucket, Key="incoming/dog.jpg", Body=b"...")
        assert router.poll_once(route) == 1

        # Then, after the first attempt and 2 retries, the OnFailure queue gets Lambda's record
        sqs = moto_session.client("sqs")
        queue_url = sqs.get_queue_url(QueueName=config.on_failure.rsplit(":", 1)[-1])["QueueUrl"]
        deadline = time.monotonic() + 30
        messages: list[dict[str, Any]] = []
        while not messages and time.monotonic() < deadline:
            messages = sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1).get("Messages", [])
    assert messages, "the failed event never reached the OnFailure queue"
    record = json.loads(messages[0]["Body"])
    event = record["requestPayload"]
    assert event["detail"]["object"]["key"] == "incoming/dog.jpg"
    assert (record["requestContext"]["condition"], record["requestContext"]["approximateInvokeCount"]) == (
        "RetriesExhausted",
        3,
    )
    assert record["responsePayload"]["errorType"] == "RuntimeError"
    assert (tmp_path / "calls").read_text().split() == [event["id"]] * 3
    assert router.deliveries[-1].outcome == "delivered"  # EventBridge handed it to Lambda


def test_a_manifest_upload_starts_the_pipeline_and_other_keys_do_not(moto_session: Any) -> None:
    deployment = deploy(moto_session, load_stack())
    route = next(route for route in deployment.routes if route.target_kind == "states")
    lambdas = LambdaRuntime()  # no function: the state machine target needs none
    router = EventRouter(moto_session, lambdas=lambdas)
    router.configure(deployment)
    lambdas.close()
    s3 = moto_session.client("s3")
    bucket = deployment.physical_names["DataBucket"]

    s3.put_object(Bucket=bucket, Key="datasets/d1/train/001.A/a.jpg", Body=b"...")
    s3.put_object(Bucket=bucket, Key="datasets/d1/manifest.json", Body=b"{}")
    assert router.poll_once(route) == 1

    sfn = moto_session.client("stepfunctions")
    deadline = time.monotonic() + 10
    executions: list[dict[str, Any]] = []
    while not executions and time.monotonic() < deadline:
        executions = sfn.list_executions(stateMachineArn=route.target)["executions"]
        time.sleep(0.1)
    assert len(executions) == 1
    started = json.loads(sfn.describe_execution(executionArn=executions[0]["executionArn"])["input"])
    assert started["detail"]["object"]["key"] == "datasets/d1/manifest.json"
    assert executions[0]["name"] == started["id"]
