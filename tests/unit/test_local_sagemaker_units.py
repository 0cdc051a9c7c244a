"""Unit tests of the local SageMaker backend's rules: hyperparameter flags, failure reasons, metric
regexes, target tracking, search-space mapping, error shapes botocore parses, and process cleanup."""

from __future__ import annotations

import json
import subprocess
import sys
from types import SimpleNamespace
from typing import Any

import botocore.session
import optuna
import pytest
from botocore.exceptions import ClientError
from botocore.parsers import create_parser
from dogbreed_job.metrics import METRIC_DEFINITIONS, format_metrics_line

from dogbreed.local.cloud.sagemaker_view import endpoint_summary
from dogbreed.local.sagemaker._aws import parse_s3_uri, validate_request
from dogbreed.local.sagemaker.autoscaling import AutoScaler, TargetTracking, desired_capacity
from dogbreed.local.sagemaker.container import (
    MetricParser,
    decode_hyperparameter,
    failure_message,
    host_threads,
    user_args,
)
from dogbreed.local.sagemaker.endpoint_metrics import VariantMetrics
from dogbreed.local.sagemaker.processes import ProcessRegistry, group_members
from dogbreed.local.sagemaker.runtime import InvokeError, error_response
from dogbreed.local.sagemaker.tuning_search import suggest
from dogbreed.loopback import pid_alive
from tests.support.waiting import wait_for


@pytest.mark.parametrize(("cap", "expected"), [(None, 2), ("1", 1), ("8", 2), ("0", 2), ("two", 2)])
def test_an_instance_gets_the_cores_capped_by_omp_num_threads(
    monkeypatch: pytest.MonkeyPatch, cap: str | None, expected: int
) -> None:
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1})
    if cap is None:
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    else:
        monkeypatch.setenv("OMP_NUM_THREADS", cap)
    assert host_threads() == expected


def test_hyperparameters_become_container_flags() -> None:
    hps = {
        "epochs": "3",
        "learning-rate": "1e-3",
        "backbone": '"resnet18"',
        "no-pretrained": "true",
        "sagemaker_program": '"train.py"',
        "sagemaker_submit_directory": '"s3://b/k.tar.gz"',
    }
    assert user_args(hps) == [
        "--backbone", "resnet18",
        "--epochs", "3",
        "--learning-rate", "1e-3",
        "--no-pretrained", "true",
    ]  # fmt: skip
    assert decode_hyperparameter("plain text") == "plain text"
    assert decode_hyperparameter('["a", 1]') == '["a", 1]'


def test_failure_message_is_the_last_exception() -> None:
    lines = [
        "epoch=1 val_acc=0.1",
        "Traceback (most recent call last):",
        '  File "train.py", line 3, in <module>',
        "    main()",
        "ValueError: learning rate must be positive",
    ]
    assert failure_message(lines) == "ValueError: learning rate must be positive"
    assert failure_message(["warning: something", "fatal: disk full"]) == "fatal: disk full"
    assert failure_message([]) == ""


def test_metric_definitions_parse_the_training_log_format() -> None:
    parser = MetricParser(METRIC_DEFINITIONS)
    line = format_metrics_line(epoch=2, train_loss=0.5, val_loss=0.25, val_acc=0.875)
    assert dict(parser.parse_line(line)) == {"train_loss": 0.5, "val_loss": 0.25, "val_acc": 0.875}
    assert parser.parse_line("nothing here") == []


def test_target_tracking_moves_toward_the_target_within_bounds() -> None:
    policy = TargetTracking(1, 4, 100.0, 60, 300, False, "p")
    assert desired_capacity(1, 250.0, policy) == 3
    assert desired_capacity(2, 1000.0, policy) == 4  # capped at MaxCapacity
    assert desired_capacity(3, 0.0, policy) == 1  # floored at MinCapacity
    assert desired_capacity(2, 100.0, policy) == 2


def test_search_space_respects_scaling_and_types() -> None:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    ranges = {
        "ContinuousParameterRanges": [
            {"Name": "lr", "MinValue": "0.0001", "MaxValue": "0.1", "ScalingType": "Logarithmic"},
            {"Name": "momentum", "MinValue": "0.9", "MaxValue": "0.999", "ScalingType": "ReverseLogarithmic"},
        ],
        "IntegerParameterRanges": [{"Name": "batch", "MinValue": "8", "MaxValue": "64"}],
        "CategoricalParameterRanges": [{"Name": "opt", "Values": ["sgd", "adamw"]}],
    }
    for _ in range(20):
        tuned = suggest(study.ask(), ranges)
        assert 0.0001 <= float(tuned["lr"]) <= 0.1
        assert 0.9 <= float(tuned["momentum"]) <= 0.999
        assert 8 <= int(tuned["batch"]) <= 64 and tuned["batch"].isdigit()
        assert tuned["opt"] in ("sgd", "adamw")


@pytest.mark.parametrize(
    ("error", "exception"),
    [
        (InvokeError("ValidationError", 400, "Endpoint x not found."), "ValidationError"),
        (InvokeError("ServiceUnavailable", 503, "busy"), "ServiceUnavailable"),
        (
            InvokeError(
                "ModelError", 424, "Received client error (415)", OriginalStatusCode=415, OriginalMessage="m"
            ),
            "ModelError",
        ),
    ],
)
def test_runtime_error_shapes_parse_into_botocore_exceptions(error: InvokeError, exception: str) -> None:
    response = error_response(error)
    model = botocore.session.get_session().get_service_model("sagemaker-runtime")
    parsed = create_parser("rest-json").parse(
        {"status_code": response.status_code, "headers": dict(response.headers), "body": response.body},
        model.operation_model("InvokeEndpoint").output_shape,
    )
    assert parsed["Error"]["Code"] == exception
    assert parsed["Error"]["Message"] == error.message
    assert json.loads(bytes(response.body)).get("OriginalStatusCode") == error.fields.get(
        "OriginalStatusCode"
    )


def test_requests_are_validated_against_the_service_model() -> None:
    with pytest.raises(ClientError) as invalid:
        validate_request("DescribeEndpoint", {"EndpointName": 3})
    assert invalid.value.response["Error"]["Code"] == "ValidationException"
    validate_request("DescribeEndpoint", {"EndpointName": "ok"})
    assert parse_s3_uri("s3://bucket/a/b") == ("bucket", "a/b")
    with pytest.raises(ValueError):
        parse_s3_uri("http://bucket/a")


def test_terminate_ends_the_whole_process_group() -> None:
    registry = ProcessRegistry()
    # A parent that starts a grandchild, as DataLoader workers or uvicorn workers would
    script = (
        "import subprocess, sys, time; "
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); time.sleep(60)"
    )
    proc = registry.spawn(
        [sys.executable, "-c", script], env={}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    wait_for(lambda: len(group_members(proc.pid)) == 2, timeout=10, what="the grandchild", interval=0.05)
    registry.terminate(proc, grace_seconds=1)
    assert not pid_alive(proc.pid)
    assert group_members(proc.pid) == []
    assert registry.alive_pids() == []


class _FakeAutoscaling:
    """application-autoscaling's two read calls, for one variant."""

    def describe_scalable_targets(self, **_: Any) -> dict[str, Any]:
        return {"ScalableTargets": [{"MinCapacity": 1, "MaxCapacity": 4}]}

    def describe_scaling_policies(self, **_: Any) -> dict[str, Any]:
        config = {
            "TargetValue": 60.0,
            "PredefinedMetricSpecification": {
                "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"
            },
            "ScaleOutCooldown": 30,
            "ScaleInCooldown": 100,
        }
        return {
            "ScalingPolicies": [
                {
                    "PolicyName": "p",
                    "PolicyType": "TargetTrackingScaling",
                    "TargetTrackingScalingPolicyConfiguration": config,
                }
            ]
        }


class _FakeEndpoints:
    """One InService endpoint with one variant whose invocation count the test sets."""

    def __init__(self) -> None:
        self.invocations = 0
        self.variant = SimpleNamespace(
            fleet=SimpleNamespace(instances=[object()]),
            metrics=SimpleNamespace(rate=lambda window: self.invocations),
        )
        self.endpoint = SimpleNamespace(
            name="ep", status="InService", variants={"AllTraffic": self.variant}, failure_reason=None
        )

    def endpoints(self) -> list[Any]:
        return [self.endpoint]

    def scale_variant(self, endpoint: Any, variant: str, desired: int) -> bool:
        self.variant.fleet.instances = [object()] * desired
        return True


def test_auto_scaler_honours_cooldowns() -> None:
    now = [1000.0]
    endpoints = _FakeEndpoints()
    scaler = AutoScaler(
        endpoints,  # type: ignore[arg-type]
        clients=lambda service: _FakeAutoscaling(),
        window_seconds=60,
        clock=lambda: now[0],
    )

    def step(seconds: float) -> list[tuple[int, int]]:
        now[0] += seconds
        scaler.evaluate()
        scaler.wait_idle()
        return [(a["FromCapacity"], a["ToCapacity"]) for a in scaler.activities()]

    endpoints.invocations = 150  # 150/min on 1 instance, target 60 -> 3 instances
    assert step(0) == [(1, 3)]
    endpoints.invocations = 400  # wants 4 (capped), but the scale-out cooldown runs
    assert step(10) == [(1, 3)]
    assert step(25) == [(1, 3), (3, 4)]
    endpoints.invocations = 0  # load stops: scale-in waits ScaleInCooldown after the last activity
    assert step(50) == [(1, 3), (3, 4)]
    assert step(60) == [(1, 3), (3, 4), (4, 1)]
    assert all(a["StatusCode"] == "Successful" for a in scaler.activities())


def test_a_serverless_variant_is_shown_by_its_memory_concurrency_and_warm_workers() -> None:
    described = {
        "EndpointName": "dogs",
        "EndpointStatus": "InService",
        "EndpointConfigName": "config-1",
        "ProductionVariants": [
            {
                "VariantName": "AllTraffic",
                "CurrentServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 4},
            }
        ],
    }
    fleet = {"Variants": [{"VariantName": "AllTraffic", "Instances": [{"pid": 1}], "Invocations": 3}]}

    shown = endpoint_summary(described, fleet)

    assert shown == (
        "dogs InService config config-1 | "
        "AllTraffic: serverless 2048 MB x 4 concurrent, 1 warm, 3 invocations"
    )


def test_a_cold_start_is_published_as_model_setup_time_in_microseconds() -> None:
    metrics = VariantMetrics()
    metrics.record_setup(2.5)  # the worker started before the invocation it serves was answered

    first = metrics.drain("dogs", "AllTraffic", 0)
    metrics.record(200, 1000.0)
    second = metrics.drain("dogs", "AllTraffic", 1)

    [setup] = first
    assert (setup["MetricName"], setup["Unit"]) == ("ModelSetupTime", "Microseconds")
    assert setup["StatisticValues"]["SampleCount"] == 1 and setup["StatisticValues"]["Sum"] == 2.5e6
    assert "ModelSetupTime" not in {datum["MetricName"] for datum in second}
    assert "Invocations" in {datum["MetricName"] for datum in second}
