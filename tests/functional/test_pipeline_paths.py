"""Every path of the training pipeline, executed by moto's Step Functions interpreter.

The state machine, buckets, tables, topic and model package group come from template.yaml; the
ValidateDataset handler runs for real in process; SageMaker is the scripted in-memory double of
`fake_sagemaker`. Each test asserts the execution's end, what the registry and the runs table hold
and what SageMaker was asked to do. Every request a Task sent (from the execution history) is
validated against botocore's model, and the last test fails if any state was never entered.
"""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from dogbreed_job.metrics import format_metrics_line

from dogbreed.pipeline import approval
from dogbreed.pipeline.asl import load_definition
from tests.functional.fake_sagemaker import Outcomes
from tests.functional.pipeline_harness import (
    DATASET_ID,
    REQUEST_PROBLEMS,
    VISITED_STATES,
    Pipeline,
    failed_cause,
    seed_production,
    succeeded_output,
)


# --- deployments -------------------------------------------------------------------------------------
def test_first_run_registers_approves_creates_the_endpoint_and_scales_it(stack: Any) -> None:
    # Given a valid dataset, the training code and no endpoint yet
    pipeline = stack()

    # When its manifest event starts the pipeline
    output = succeeded_output(pipeline.run())

    # Then the final (distributed) model is registered, approved by the gate and deployed
    assert output["outcome"] == "deployed"
    assert (output["source"], output["test_acc"]) == ("final", pytest.approx(0.91))
    assert output["rollout"]["action"] == "create" and "no previous fleet" in output["rollout"]["note"]
    backend = pipeline.backend
    package = backend.packages[output["model_package"]]
    assert package["ModelApprovalStatus"] == "Approved"
    assert package["CustomerMetadataProperties"]["test_acc"] == "0.91"
    assert package["CustomerMetadataProperties"]["dataset_id"] == DATASET_ID
    assert "first model" in package["ApprovalDescription"]
    version = output["model_version"]
    assert backend.endpoints[pipeline.endpoint_name]["EndpointConfigName"] == version
    model = backend.models[version]
    assert model["PrimaryContainer"] == {"ModelPackageName": output["model_package"]}
    assert model["EnableNetworkIsolation"] is True
    # ... names derive from the stack, and everything created carries the stack's tags (except the
    # model package: a versioned package takes its group's tags, CreateModelPackage refuses Tags)
    assert version.startswith("dogbreed-0c10ca1d-")
    tuning_name = next(iter(backend.tuning_jobs))
    assert tuning_name.startswith("hpo-0c10ca1d-") and len(tuning_name) <= 32
    tags = {tag["Key"]: tag["Value"] for tag in model["Tags"]}
    assert tags == {
        "dogbreed:stack": "dogbreed-local",
        "dogbreed:run": output["run_id"],
        "dogbreed:dataset": DATASET_ID,
    }
    for request in (
        backend.tuning_jobs[tuning_name]["request"],
        backend.endpoint_configs[version],
        backend.endpoints[pipeline.endpoint_name]["request"],
    ):
        assert request["Tags"] == model["Tags"]
    assert "Tags" not in package
    # ... the metric regexes SageMaker gets read the lines train.py prints (escapes intact)
    line = format_metrics_line(epoch=3, train_loss=0.81, val_loss=0.52, val_acc=0.874)
    line += " " + format_metrics_line(test_acc=0.9, test_loss=0.4, test_top5=1.0)
    for definition in backend.tuning_jobs[tuning_name]["request"]["TrainingJobDefinition"][
        "AlgorithmSpecification"
    ]["MetricDefinitions"]:
        assert re.search(definition["Regex"], line), definition
    # ... the final job ran the best trial's hyperparameters on two instances, resuming on spot
    final_job = next(
        job["request"] for name, job in backend.training_jobs.items() if name.startswith("train-")
    )
    assert final_job["ResourceConfig"]["InstanceCount"] == 2
    hyperparameters = final_job["HyperParameters"]
    assert hyperparameters["sagemaker_torch_distributed_enabled"] == "true"
    assert (hyperparameters["learning-rate"], hyperparameters["resume"]) == ("0.0003", "true")
    assert final_job["Tags"] == model["Tags"]
    # ... and target tracking is registered on the variant
    autoscaling = pipeline.session.client("application-autoscaling")
    target = autoscaling.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"][0]
    assert target["ResourceId"] == f"endpoint/{pipeline.endpoint_name}/variant/AllTraffic"
    assert (target["MinCapacity"], target["MaxCapacity"]) == (1, 4)
    # ... the run's record says so, and the endpoint lease was given back
    record = pipeline.run_record(output["run_id"])
    assert (record["status"], record["stage"], record["dataset_id"]) == ("deployed", "Deploy", DATASET_ID)
    assert record["detail"]["candidate"]["training_job"] == final_job["TrainingJobName"]
    assert pipeline.lock_item() is None


def test_a_better_model_updates_the_endpoint_with_deployment_guardrails(stack: Any) -> None:
    # Given an endpoint serving a registered model at 0.85
    pipeline = stack(
        Outcomes(trial_test_acc=0.9, final_test_acc=0.9),
        RolloutTrafficRouting="CANARY",
        RolloutStepPercent="25",
    )
    seed_production(pipeline, 0.85)

    # When a run produces a 0.90 model
    output = succeeded_output(pipeline.run())

    # Then the endpoint is updated blue/green with a canary and the rollback alarms
    assert output["outcome"] == "deployed"
    assert output["production"]["test_acc"] == pytest.approx(0.85)
    update = pipeline.backend.endpoints[pipeline.endpoint_name]["update_request"]
    policy = update["DeploymentConfig"]["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
    assert policy == {
        "Type": "CANARY",
        "WaitIntervalInSeconds": 600,
        "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 25},
    }
    alarms = [
        alarm["AlarmName"] for alarm in update["DeploymentConfig"]["AutoRollbackConfiguration"]["Alarms"]
    ]
    assert alarms == [
        "dogbreed-local-EndpointServerErrorsAlarm",
        "dogbreed-local-EndpointLatencyAlarm",
        "dogbreed-local-LowConfidenceAnswersAlarm",
    ]
    assert output["rollout"]["replaced_version"] == "dogbreed-0c10ca1d-260101000000-aaa"
    assert pipeline.backend.endpoints[pipeline.endpoint_name]["EndpointConfigName"] == output["model_version"]


def serve_scaled_on_c5(pipeline: Pipeline) -> tuple[Any, str]:
    """Production on ml.c5.large, registered for auto scaling: (the autoscaling client, the target)."""
    seed_production(pipeline, 0.85, instance_type="ml.c5.large")
    autoscaling = pipeline.session.client("application-autoscaling")
    resource_id = f"endpoint/{pipeline.endpoint_name}/variant/AllTraffic"
    autoscaling.register_scalable_target(
        ServiceNamespace="sagemaker",
        ResourceId=resource_id,
        ScalableDimension="sagemaker:variant:DesiredInstanceCount",
        MinCapacity=1,
        MaxCapacity=2,
    )
    return autoscaling, resource_id


def test_a_new_instance_type_deregisters_auto_scaling_before_the_update(stack: Any) -> None:
    # Given a scaled endpoint on ml.c5.large, and a stack now configured for ml.m5.large
    pipeline = stack(Outcomes(trial_test_acc=0.9, final_test_acc=0.9), EndpointInstanceType="ml.m5.large")
    autoscaling, resource_id = serve_scaled_on_c5(pipeline)

    # When a better model is deployed
    execution_arn = pipeline.start()
    output = succeeded_output(pipeline.wait(execution_arn))

    # Then auto scaling was deregistered before UpdateEndpoint (SageMaker refuses the update
    # otherwise) and registered again after it, with the stack's capacities
    assert output["outcome"] == "deployed"
    entered = pipeline.entered_states(execution_arn)
    assert (
        entered.index("DeregisterScaling") < entered.index("UpdateEndpoint") < entered.index("ScaleEndpoint")
    )
    [target] = autoscaling.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
    assert (target["ResourceId"], target["MaxCapacity"]) == (
        resource_id,
        int(pipeline.stack.parameters["EndpointMaxInstances"]),
    )


@pytest.mark.parametrize("restore_fails", [False, True])
def test_a_failed_update_after_deregistering_registers_the_old_fleet_again(
    stack: Any, monkeypatch: pytest.MonkeyPatch, restore_fails: bool
) -> None:
    # Given a scaled endpoint on ml.c5.large, a stack now on ml.m5.large, and an update SageMaker rolls back
    outcomes = Outcomes(trial_test_acc=0.9, final_test_acc=0.9, update_rolls_back=True)
    pipeline = stack(outcomes, EndpointInstanceType="ml.m5.large")
    autoscaling, resource_id = serve_scaled_on_c5(pipeline)
    if restore_fails:
        from moto.applicationautoscaling.exceptions import AWSValidationException
        from moto.applicationautoscaling.models import ApplicationAutoscalingBackend

        def refuse(*args: Any, **kwargs: Any) -> None:
            raise AWSValidationException("Unsupported service namespace")

        monkeypatch.setattr(ApplicationAutoscalingBackend, "register_scalable_target", refuse)

    # When the run deregisters scaling, updates, and the update is rolled back
    execution_arn = pipeline.start()
    failed_cause(pipeline.wait(execution_arn), "DeploymentRolledBack")

    # Then the old fleet, which serves on, is registered for auto scaling again after the revocation
    entered = pipeline.entered_states(execution_arn)
    assert (
        entered.index("DeregisterScaling")
        < entered.index("RevokeApproval")
        < entered.index("ScalingToRestore")
        < entered.index("ScaleEndpoint")
    )
    targets = autoscaling.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
    (record,) = pipeline.run_records()
    outcome = record["detail"]["outcome"]
    assert outcome["error"] == "DeploymentRolledBack"
    if restore_fails:
        assert targets == []
        assert outcome["scaling"].startswith("not restored on the previous fleet")
    else:
        assert [(t["ResourceId"], t["MaxCapacity"]) for t in targets] == [
            (resource_id, int(pipeline.stack.parameters["EndpointMaxInstances"]))
        ]
        assert outcome["scaling"] == "restored on the previous fleet"
        assert "PutScalingPolicy" in entered


def test_a_serverless_stack_creates_a_serverless_endpoint_without_auto_scaling(stack: Any) -> None:
    # Given a stack with EndpointType=serverless and no endpoint yet
    pipeline = stack(EndpointType="serverless", ServerlessMemorySizeInMB="2048", ServerlessMaxConcurrency="3")

    # When the pipeline runs to a deployment
    output = succeeded_output(pipeline.run())

    # Then the endpoint config has a ServerlessConfig instead of instances, the model has neither
    # network isolation nor a VPC (Serverless Inference supports neither) and nothing is registered
    # with Application Auto Scaling
    assert (output["outcome"], output["endpoint_type"]) == ("deployed", "serverless")
    assert "serverless" in output["scaling"] and "scaling_policy_arn" not in output
    [variant] = pipeline.backend.endpoint_configs[output["model_version"]]["ProductionVariants"]
    assert variant["ServerlessConfig"] == {"MemorySizeInMB": 2048, "MaxConcurrency": 3}
    assert "InstanceType" not in variant and "InitialInstanceCount" not in variant
    model = pipeline.backend.models[output["model_version"]]
    assert model["EnableNetworkIsolation"] is False and "VpcConfig" not in model
    autoscaling = pipeline.session.client("application-autoscaling")
    assert autoscaling.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"] == []
    assert pipeline.run_record(output["run_id"])["status"] == "deployed"


def test_an_instance_endpoint_is_not_updated_to_serverless(stack: Any) -> None:
    # Given an endpoint serving on instances, and the stack now configured serverless
    pipeline = stack(Outcomes(trial_test_acc=0.9, final_test_acc=0.9), EndpointType="serverless")
    serving = seed_production(pipeline, 0.85)

    # When a better model is trained
    execution_arn = pipeline.start()
    cause = failed_cause(pipeline.wait(execution_arn), "EndpointTypeChangeUnsupported")

    # Then the run stops before the gate (SageMaker refuses to update an instance endpoint to
    # serverless) and says what to do; the endpoint, its scaling and the registry are untouched
    assert "delete-endpoint" in cause and "EndpointType=instance" in cause
    assert "UpdateEndpoint" not in pipeline.backend.calls and "CreateModel" not in pipeline.backend.calls
    assert "Gate" not in pipeline.entered_states(execution_arn)
    endpoint = pipeline.backend.endpoints[pipeline.endpoint_name]
    assert endpoint["EndpointConfigName"] == "dogbreed-0c10ca1d-260101000000-aaa"
    assert pipeline.backend.packages[serving]["ModelApprovalStatus"] == "Approved"
    [record] = pipeline.run_records()
    assert (record["status"], record["detail"]["outcome"]["error"]) == (
        "failed",
        "EndpointTypeChangeUnsupported",
    )
    assert pipeline.lock_item() is None


@pytest.mark.parametrize(
    ("routing", "expected"),
    [
        (
            "LINEAR",
            {
                "Type": "LINEAR",
                "WaitIntervalInSeconds": 600,
                "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": 50},
            },
        ),
        ("ALL_AT_ONCE", {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 600}),
    ],
)
def test_linear_and_all_at_once_rollouts_are_requested_as_configured(
    stack: Any, routing: str, expected: Any
) -> None:
    pipeline = stack(RolloutTrafficRouting=routing)
    seed_production(pipeline, 0.5)

    succeeded_output(pipeline.run())

    update = pipeline.backend.endpoints[pipeline.endpoint_name]["update_request"]
    assert update["DeploymentConfig"]["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"] == expected


def test_an_endpoint_made_without_the_registry_is_replaced_by_a_model_over_the_threshold(stack: Any) -> None:
    # Given an endpoint whose model was made by hand (no model package behind it)
    pipeline = stack()
    backend = pipeline.backend
    backend.models["hand-made"] = {
        "ModelName": "hand-made",
        "PrimaryContainer": {"Image": "x", "ModelDataUrl": "s3://b/m.tar.gz"},
    }
    backend.endpoint_configs["hand-made"] = {
        "ProductionVariants": [{"VariantName": "AllTraffic", "ModelName": "hand-made"}]
    }
    backend.endpoints[pipeline.endpoint_name] = {
        "EndpointConfigName": "hand-made",
        "EndpointStatus": "InService",
    }

    output = succeeded_output(pipeline.run())

    assert output["outcome"] == "deployed"
    assert output["production"] == {"model_version": "hand-made", "test_acc": 0, "package_arn": None}


def test_the_endpoint_is_polled_until_it_is_in_service(stack: Any) -> None:
    pipeline = stack(Outcomes(endpoint_creating_polls=3))

    output = succeeded_output(pipeline.run())

    assert output["outcome"] == "deployed"
    assert pipeline.backend.calls.count("DescribeEndpoint") == 3


def test_reusing_the_best_trial_skips_the_final_job(stack: Any) -> None:
    pipeline = stack(ReuseTuningArtifact="true", UseSpotTraining="false")

    output = succeeded_output(pipeline.run())

    assert (output["outcome"], output["source"]) == ("deployed", "trial")
    assert "CreateTrainingJob" not in pipeline.backend.calls
    definition = next(iter(pipeline.backend.tuning_jobs.values()))["request"]["TrainingJobDefinition"]
    assert "MaxWaitTimeInSeconds" not in definition["StoppingCondition"]
    assert "resume" not in definition["StaticHyperParameters"]


VPC_PARAMETERS = {
    "VpcSubnetIds": "subnet-0a1b,subnet-2c3d",
    "VpcSecurityGroupIds": "sg-0e4f",
    "EnableTrainingNetworkIsolation": "true",
    "EnableInterContainerTrafficEncryption": "true",
}


@pytest.mark.parametrize("in_vpc", [False, True], ids=["defaults", "vpc-and-isolation"])
def test_jobs_and_model_get_the_vpc_and_isolation_settings_only_when_given(stack: Any, in_vpc: bool) -> None:
    # Given the VPC and training isolation parameters, or the (dev) defaults
    pipeline = stack(**(VPC_PARAMETERS if in_vpc else {}))

    # When the pipeline runs to a deployment
    output = succeeded_output(pipeline.run())

    # Then the tuning trials, the final job and the model carry exactly those settings
    backend = pipeline.backend
    trials = next(iter(backend.tuning_jobs.values()))["request"]["TrainingJobDefinition"]
    final_job = next(
        job["request"] for name, job in backend.training_jobs.items() if name.startswith("train-")
    )
    model = backend.models[output["model_version"]]
    vpc = {"Subnets": ["subnet-0a1b", "subnet-2c3d"], "SecurityGroupIds": ["sg-0e4f"]}
    for request in (trials, final_job, model):
        assert request.get("VpcConfig") == (vpc if in_vpc else None)
    for request in (trials, final_job):
        assert request["EnableNetworkIsolation"] is in_vpc
        assert request["EnableInterContainerTrafficEncryption"] is in_vpc
    assert model["EnableNetworkIsolation"] is True  # the endpoint never needs the network


# --- the final model against its trial --------------------------------------------------------------
def test_a_final_model_worse_than_its_trial_deploys_the_trial_and_says_why(stack: Any) -> None:
    # Given a final multi-instance model far below the trial it came from
    pipeline = stack(Outcomes(trial_test_acc=0.95, final_test_acc=0.62))

    output = succeeded_output(pipeline.run())

    # Then the trial's model is the candidate, and the registry and run record say why
    assert (output["outcome"], output["source"], output["test_acc"]) == (
        "deployed",
        "trial",
        pytest.approx(0.95),
    )
    package = pipeline.backend.packages[output["model_package"]]
    assert package["CustomerMetadataProperties"]["source"] == "trial"
    reason = pipeline.run_record(output["run_id"])["detail"]["candidate"]["reason"]
    assert "0.62" in reason and "0.95" in reason


def test_a_final_model_worse_than_its_trial_fails_the_run_when_asked_to(stack: Any) -> None:
    pipeline = stack(Outcomes(trial_test_acc=0.95, final_test_acc=0.62), FinalModelFallback="fail")

    execution = pipeline.run()

    assert execution["status"] == "FAILED"
    assert execution["error"] == "FinalModelWorseThanTrial"
    assert not pipeline.backend.packages and not pipeline.backend.endpoints


def test_a_final_model_within_the_tolerance_is_the_candidate(stack: Any) -> None:
    pipeline = stack(Outcomes(trial_test_acc=0.95, final_test_acc=0.94))

    output = succeeded_output(pipeline.run())

    assert (output["source"], output["test_acc"]) == ("final", pytest.approx(0.94))


# --- the gate -----------------------------------------------------------------------------------------
def test_the_gate_rejects_a_model_below_production_and_leaves_the_endpoint(stack: Any) -> None:
    pipeline = stack(Outcomes(trial_test_acc=0.88, final_test_acc=0.88))
    seed_production(pipeline, 0.93)

    output = succeeded_output(pipeline.run())

    assert output["outcome"] == "rejected"
    assert output["gate"] == {
        "passed": False,
        "test_acc": pytest.approx(0.88),
        "threshold": pytest.approx(0.8),
        "production_test_acc": pytest.approx(0.93),
        "production_version": "dogbreed-0c10ca1d-260101000000-aaa",
    }
    package = pipeline.backend.packages[output["model_package"]]
    assert package["ModelApprovalStatus"] == "Rejected"
    assert "below the serving model" in package["ApprovalDescription"]
    assert (
        pipeline.backend.endpoints[pipeline.endpoint_name]["EndpointConfigName"]
        == "dogbreed-0c10ca1d-260101000000-aaa"
    )
    assert not {"CreateModel", "UpdateEndpoint"} & set(pipeline.backend.calls)
    assert pipeline.run_record(output["run_id"])["status"] == "rejected"


def test_the_gate_rejects_a_first_model_below_the_threshold(stack: Any) -> None:
    pipeline = stack(Outcomes(trial_test_acc=0.5, final_test_acc=0.5))

    output = succeeded_output(pipeline.run())

    assert output["outcome"] == "rejected"
    assert "below the threshold" in output["reason"]
    assert not pipeline.backend.endpoints


# --- manual approval ----------------------------------------------------------------------------------
def _answer_when_asked(pipeline: Pipeline, execution_arn: str, answer: str) -> None:
    pipeline.wait_for_state(execution_arn, "RequestApproval")
    pending = approval.find_pending(pipeline.sfn, pipeline.arn, _run_id(pipeline, execution_arn))
    if answer == "approve":
        approval.approve(pipeline.sfn, pending, by="arn:aws:iam::123456789012:user/ana", reason="looks good")
    else:
        approval.reject(
            pipeline.sfn, pending, by="arn:aws:iam::123456789012:user/ana", reason="too slow on pugs"
        )


def _run_id(pipeline: Pipeline, execution_arn: str) -> str:
    for request in approval.pending_approvals(pipeline.sfn, pipeline.arn):
        if request.execution_arn == execution_arn:
            return request.run_id
    raise AssertionError("no approval request")


def test_a_manual_approval_deploys_and_records_who_approved(stack: Any) -> None:
    # Given manual approval and a candidate that passes the gate
    pipeline = stack(ApprovalMode="manual")
    execution_arn = pipeline.start()

    # When the approver answers yes
    _answer_when_asked(pipeline, execution_arn, "approve")
    output = succeeded_output(pipeline.wait(execution_arn))

    # Then it is deployed and the registry and the run record name the approver
    assert output["outcome"] == "deployed"
    assert output["approval"]["decision"] == "approved" and output["approval"]["by"].endswith("user/ana")
    package = pipeline.backend.packages[output["model_package"]]
    assert package["ApprovalDescription"] == "approved by arn:aws:iam::123456789012:user/ana: looks good"
    assert pipeline.run_record(output["run_id"])["detail"]["approval"]["reason"] == "looks good"


def test_the_approval_request_carries_both_models_metrics_to_the_topic(stack: Any) -> None:
    pipeline = stack(ApprovalMode="manual")
    seed_production(pipeline, 0.85)
    execution_arn = pipeline.start()
    pipeline.wait_for_state(execution_arn, "RequestApproval")

    (pending,) = approval.pending_approvals(pipeline.sfn, pipeline.arn)

    assert pending.request["candidate"]["test_acc"] == pytest.approx(0.91)
    assert pending.request["production"]["test_acc"] == pytest.approx(0.85)
    assert pending.request["approve"] == f"dogbreed approve {pending.run_id}"
    approval.reject(pipeline.sfn, pending, by="tester", reason="cleanup")
    pipeline.wait(execution_arn)


def test_the_endpoint_lease_outlasts_the_longest_approval_wait(stack: Any) -> None:
    # Given a lease shorter than the approval timeout
    pipeline = stack(ApprovalMode="manual", ApprovalTimeoutSeconds="604800", DeployLockLeaseSeconds="60")
    execution_arn = pipeline.start()

    # When the run waits for its approver
    pipeline.wait_for_state(execution_arn, "RequestApproval")

    # Then no other run can take the endpoint over before the wait ends
    lease = pipeline.lock_item()
    assert lease is not None
    assert int(lease["lease_expires_at"]) - time.time() >= 604800 + 60 - 30
    (pending,) = approval.pending_approvals(pipeline.sfn, pipeline.arn)
    approval.reject(pipeline.sfn, pending, by="tester", reason="cleanup")
    pipeline.wait(execution_arn)


def test_a_manual_rejection_leaves_the_endpoint_and_records_why(stack: Any) -> None:
    pipeline = stack(ApprovalMode="manual")
    execution_arn = pipeline.start()

    _answer_when_asked(pipeline, execution_arn, "reject")
    output = succeeded_output(pipeline.wait(execution_arn))

    assert output["outcome"] == "rejected"
    assert output["approval"]["decision"] == "rejected"
    package = pipeline.backend.packages[output["model_package"]]
    assert package["ModelApprovalStatus"] == "Rejected"
    assert "too slow on pugs" in package["ApprovalDescription"]
    assert not pipeline.backend.endpoints


def test_a_rejection_sent_without_dogbreed_reject_is_recorded_as_it_came(stack: Any) -> None:
    # Given a waiting run, rejected from the console or the AWS CLI: a plain-text, multi-line Cause
    pipeline = stack(ApprovalMode="manual")
    execution_arn = pipeline.start()
    pipeline.wait_for_state(execution_arn, "RequestApproval")
    (pending,) = approval.pending_approvals(pipeline.sfn, pipeline.arn)
    pipeline.sfn.send_task_failure(
        taskToken=pending.task_token, error=approval.APPROVAL_REJECTED_ERROR, cause="wrong dataset\nrerun"
    )

    output = succeeded_output(pipeline.wait(execution_arn))

    # Then the run is rejected with that text (the registry's description on one line: its pattern is .*)
    assert output["outcome"] == "rejected"
    assert output["approval"] == {"decision": "rejected", "by": "unknown", "reason": "wrong dataset\nrerun"}
    package = pipeline.backend.packages[output["model_package"]]
    assert package["ApprovalDescription"] == "approval: rejected by unknown: wrong dataset rerun"


def test_an_unanswered_approval_times_out_as_a_rejection(stack: Any) -> None:
    pipeline = stack(ApprovalMode="manual", ApprovalTimeoutSeconds="1")

    output = succeeded_output(pipeline.run())

    assert output["outcome"] == "rejected"
    assert output["approval"] == {"decision": "timed_out", "after_seconds": 1}
    assert pipeline.backend.packages[output["model_package"]]["ModelApprovalStatus"] == "Rejected"


# --- one deployment at a time -------------------------------------------------------------------------
def test_a_run_waits_for_the_endpoint_lease_and_deploys_when_it_is_given_back(stack: Any) -> None:
    # Given another run holding the endpoint lease
    pipeline = stack(DeployLockPollSeconds="1", DeployLockMaxPolls="30")
    pipeline.runs_table.put_item(
        Item={"run_id": "LOCK#endpoint", "holder": "other", "lease_expires_at": 4102444800}
    )
    execution_arn = pipeline.start()
    pipeline.wait_for_state(execution_arn, "WaitForDeployLock")

    # When it gives the lease back
    releaser = threading.Timer(0.5, lambda: pipeline.runs_table.delete_item(Key={"run_id": "LOCK#endpoint"}))
    releaser.start()
    output = succeeded_output(pipeline.wait(execution_arn))
    releaser.join()

    # Then this run deploys, and gives its own lease back
    assert output["outcome"] == "deployed"
    assert pipeline.lock_item() is None


def test_a_run_gives_up_when_the_endpoint_stays_taken(stack: Any) -> None:
    pipeline = stack(DeployLockMaxPolls="2")
    pipeline.runs_table.put_item(
        Item={"run_id": "LOCK#endpoint", "holder": "other", "lease_expires_at": 4102444800}
    )

    execution = pipeline.run()

    assert (execution["status"], execution["error"]) == ("FAILED", "DeployLockTimeout")
    assert pipeline.lock_item()["holder"] == "other"  # not ours to release
    package = next(iter(pipeline.backend.packages.values()))
    assert package["ModelApprovalStatus"] == "PendingManualApproval"


def test_an_expired_lease_is_taken_over(stack: Any) -> None:
    pipeline = stack()
    pipeline.runs_table.put_item(Item={"run_id": "LOCK#endpoint", "holder": "crashed", "lease_expires_at": 1})

    assert succeeded_output(pipeline.run())["outcome"] == "deployed"


# --- failures -------------------------------------------------------------------------------------------
def test_a_missing_training_code_package_stops_before_any_paid_compute(stack: Any) -> None:
    pipeline = stack(code=False)

    cause = failed_cause(pipeline.run(), "TrainingCodeMissing")

    assert "dogbreed deploy" in cause and pipeline.code_key in cause
    assert pipeline.backend.calls == ["CreateModelPackageGroup"]
    (record,) = pipeline.run_records()
    assert (record["status"], record["stage"]) == ("failed", "CheckTrainingCode")


def test_an_invalid_dataset_fails_before_any_compute(stack: Any, dataset: Path) -> None:
    pipeline = stack()
    s3 = pipeline.session.client("s3")
    listing = s3.list_objects_v2(Bucket=pipeline.data_bucket, Prefix=f"datasets/{DATASET_ID}/test/")
    for obj in listing["Contents"]:
        s3.delete_object(Bucket=pipeline.data_bucket, Key=obj["Key"])

    cause = failed_cause(pipeline.run(), "DatasetInvalid")

    assert "test" in cause
    assert pipeline.backend.calls == ["CreateModelPackageGroup"]


@pytest.mark.parametrize(("seed", "sent"), [("-1", None), ("7", 7)], ids=["unset", "seeded"])
def test_tuning_random_seed_is_sent_only_when_set(stack: Any, seed: str, sent: int | None) -> None:
    pipeline = stack(TuningRandomSeed=seed)

    succeeded_output(pipeline.run())

    [job] = pipeline.backend.tuning_jobs.values()
    assert job["request"]["HyperParameterTuningJobConfig"].get("RandomSeed") == sent


def test_a_tuning_failure_stops_the_job_and_records_the_failure(stack: Any) -> None:
    pipeline = stack(Outcomes(tuning_fails=True))

    cause = failed_cause(pipeline.run(), "TuningFailed")

    assert cause.startswith("Tune (States.TaskFailed): ") and "CUDA out of memory" in cause
    assert "StopHyperParameterTuningJob" in pipeline.backend.calls
    (record,) = pipeline.run_records()
    assert (record["status"], record["stage"]) == ("failed", "Tune")


def test_tuning_without_a_completed_trial_fails_clearly(stack: Any) -> None:
    pipeline = stack(Outcomes(no_completed_trial=True))

    cause = failed_cause(pipeline.run(), "NoCompletedTrial")

    assert "no completed trial" in cause


def test_a_best_trial_without_test_accuracy_fails_clearly(stack: Any) -> None:
    pipeline = stack(Outcomes(trial_test_acc=None))

    assert "printed no test_acc" in failed_cause(pipeline.run(), "TrialWithoutTestAccuracy")


def test_a_final_training_failure_stops_the_job(stack: Any) -> None:
    pipeline = stack(Outcomes(training_fails=True))

    cause = failed_cause(pipeline.run(), "TrainingFailed")

    assert "NCCL timeout" in cause
    assert "StopTrainingJob" in pipeline.backend.calls and not pipeline.backend.models


def test_an_endpoint_that_is_not_in_service_is_not_touched(stack: Any) -> None:
    pipeline = stack()
    seed_production(pipeline, 0.5)
    pipeline.backend.endpoints[pipeline.endpoint_name]["EndpointStatus"] = "Failed"

    cause = failed_cause(pipeline.run(), "EndpointNotUpdatable")

    assert "is Failed" in cause and "UpdateEndpoint" not in pipeline.backend.calls


def test_a_failed_model_creation_revokes_the_approval(stack: Any) -> None:
    pipeline = stack(Outcomes(create_model_error="ResourceLimitExceeded"))

    cause = failed_cause(pipeline.run(), "SageMaker.ResourceLimitExceededException")

    assert "Cannot create model" in cause
    package = next(iter(pipeline.backend.packages.values()))
    assert package["ModelApprovalStatus"] == "Rejected"
    assert package["ApprovalDescription"].startswith(
        "deployment failed: SageMaker.ResourceLimitExceededException"
    )


def test_a_failed_endpoint_revokes_the_approval(stack: Any) -> None:
    pipeline = stack(Outcomes(endpoint_fails=True))

    cause = failed_cause(pipeline.run(), "EndpointFailed")

    assert "ping health check" in cause
    assert next(iter(pipeline.backend.packages.values()))["ModelApprovalStatus"] == "Rejected"


def test_a_rolled_back_update_names_the_alarm_and_keeps_the_old_model(stack: Any) -> None:
    # Given an update that SageMaker rolls back because the 5xx alarm fired during the bake
    pipeline = stack(Outcomes(update_rolls_back=True))
    seed_production(pipeline, 0.5)
    cloudwatch = pipeline.session.client("cloudwatch")
    alarm = "dogbreed-local-EndpointServerErrorsAlarm"
    cloudwatch.put_metric_alarm(
        AlarmName=alarm,
        MetricName="Invocation5XXErrors",
        Namespace="AWS/SageMaker",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
    )
    cloudwatch.set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="canary 5xx")

    cause = failed_cause(pipeline.run(), "DeploymentRolledBack")

    # Then the run names the alarm, the old config serves on, and the candidate is rejected
    assert f"alarms in ALARM: {alarm}" in cause
    assert (
        pipeline.backend.endpoints[pipeline.endpoint_name]["EndpointConfigName"]
        == "dogbreed-0c10ca1d-260101000000-aaa"
    )
    candidate = next(p for p in pipeline.backend.packages.values() if p.get("ModelPackageGroupName"))
    assert candidate["ModelApprovalStatus"] == "Rejected"
    (record,) = pipeline.run_records()
    assert record["detail"]["outcome"]["alarms"] == [alarm]


def test_an_endpoint_that_never_comes_up_times_out(stack: Any) -> None:
    pipeline = stack(Outcomes(endpoint_creating_polls=50), EndpointPollMaxIterations="2")

    assert "after 2 polls" in failed_cause(pipeline.run(), "EndpointPollTimedOut")


@pytest.mark.parametrize(
    ("routing", "outcome"),
    [
        # 2 polls, plus 2 steps x 3 s of bake at 1 poll per second: 8 polls, the update needs 7
        (
            {"RolloutTrafficRouting": "LINEAR", "RolloutStepPercent": "50", "RolloutBakeSeconds": "3"},
            "deployed",
        ),
        # a canary bakes twice (its share, then the final bake with all traffic): 2 + 2 x 3 = 8 polls
        (
            {"RolloutTrafficRouting": "CANARY", "RolloutStepPercent": "50", "RolloutBakeSeconds": "3"},
            "deployed",
        ),
        # no bake to wait for: the 2 polls are the whole budget
        ({"RolloutTrafficRouting": "ALL_AT_ONCE", "RolloutBakeSeconds": "0"}, "EndpointPollTimedOut"),
    ],
)
def test_the_poll_budget_of_an_update_includes_the_rollouts_bake_time(
    stack: Any, routing: dict[str, str], outcome: str
) -> None:
    pipeline = stack(
        Outcomes(trial_test_acc=0.9, final_test_acc=0.9, endpoint_updating_polls=7),
        EndpointPollMaxIterations="2",
        **routing,
    )
    seed_production(pipeline, 0.85)

    described = pipeline.run()

    if outcome == "deployed":
        assert succeeded_output(described)["outcome"] == "deployed"
    else:
        assert "after 2 polls" in failed_cause(described, outcome)


def test_a_scaling_failure_is_reported_with_the_model_serving(
    stack: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto.applicationautoscaling.models import ApplicationAutoscalingBackend

    def refuse(*args: Any, **kwargs: Any) -> None:
        from moto.applicationautoscaling.exceptions import AWSValidationException

        raise AWSValidationException("Unsupported service namespace")

    monkeypatch.setattr(ApplicationAutoscalingBackend, "register_scalable_target", refuse)
    pipeline = stack()

    cause = failed_cause(pipeline.run(), "ScalingFailed")

    assert "deployed and serving" in cause
    assert pipeline.backend.endpoints[pipeline.endpoint_name]["EndpointStatus"] == "InService"


# --- input ---------------------------------------------------------------------------------------------
def test_a_manual_start_with_a_dataset_id_runs(stack: Any) -> None:
    pipeline = stack()

    output = succeeded_output(pipeline.run(payload={"dataset_id": DATASET_ID}))

    assert output["dataset_id"] == DATASET_ID


@pytest.mark.parametrize("payload", [{}, {"dataset_id": "../etc"}, {"dataset_id": 7}])
def test_a_start_without_a_usable_dataset_id_fails_as_invalid_input(stack: Any, payload: Any) -> None:
    pipeline = stack()

    failed_cause(pipeline.run(payload=payload), "InvalidInput")

    assert pipeline.backend.calls == ["CreateModelPackageGroup"]


def test_a_nested_manifest_key_is_ignored(stack: Any) -> None:
    pipeline = stack()

    output = succeeded_output(pipeline.run(key=f"datasets/{DATASET_ID}/extra/manifest.json"))

    assert output["outcome"] == "ignored"
    assert pipeline.backend.calls == ["CreateModelPackageGroup"]


def test_dataset_ids_with_quotes_and_backslashes_cannot_reach_an_expression(stack: Any) -> None:
    pipeline = stack()

    failed_cause(pipeline.run(payload={"dataset_id": 'a"b\\c'}), "InvalidInput")


# --- coverage ----------------------------------------------------------------------------------------
def test_every_state_of_the_definition_was_entered_by_the_tests_above() -> None:
    states = set(load_definition()["States"])
    assert states - VISITED_STATES == set(), "states no test entered"
    assert not REQUEST_PROBLEMS
