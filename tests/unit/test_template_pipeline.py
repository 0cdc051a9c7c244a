"""template.yaml's pipeline rules: the state machine's and SageMaker role's scopes, buckets' events,
tables, the dataset trigger, alarms and parameters. The stack-wide security rules (IAM wildcards,
PassRole, encryption, TLS-only, public access) are in tests/security/test_template_security.py."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support.templates import actions, identity_statements, load_template

TEMPLATE = load_template()
RESOURCES: dict[str, dict[str, Any]] = TEMPLATE["Resources"]


def test_state_machine_has_the_sync_rule_and_autoscaling_permissions() -> None:
    statements = [s for lid, s in identity_statements(RESOURCES) if lid == "TrainingPipeline"]
    events = next(s for s in statements if "events:PutRule" in actions(s))
    assert set(actions(events)) == {"events:PutTargets", "events:PutRule", "events:DescribeRule"}
    pass_role = next(s for s in statements if "iam:PassRole" in actions(s))
    assert pass_role["Resource"] == {"Fn::GetAtt": ["SageMakerExecutionRole", "Arn"]}
    assert pass_role["Condition"]["StringEquals"]["iam:PassedToService"] == "sagemaker.amazonaws.com"
    scaling = {a for s in statements for a in actions(s) if a.startswith("application-autoscaling:")}
    assert {
        "application-autoscaling:RegisterScalableTarget",
        "application-autoscaling:PutScalingPolicy",
    } <= scaling
    linked = next(s for s in statements if "iam:CreateServiceLinkedRole" in actions(s))
    assert (
        linked["Condition"]["StringLike"]["iam:AWSServiceName"]
        == "sagemaker.application-autoscaling.amazonaws.com"
    )


# Batch Transform jobs run with the model's role: images in, one .out per image under the batch.
BATCH_STATEMENTS = {
    "ReadBatchInputs": (["s3:GetObject"], "${InferenceBucket.Arn}/*"),
    "WriteBatchResults": (
        ["s3:PutObject", "s3:AbortMultipartUpload"],
        "${InferenceBucket.Arn}/batches/*/results/*",
    ),
}


def test_sagemaker_role_is_scoped_to_data_bucket_prefixes_and_batch_results() -> None:
    statements = [s for lid, s in identity_statements(RESOURCES) if lid == "SageMakerExecutionRole"]
    batch = {s["Sid"]: s for s in statements if "InferenceBucket" in json.dumps(s)}
    assert {sid: (actions(s), s["Resource"]["Fn::Sub"]) for sid, s in batch.items()} == BATCH_STATEMENTS
    for statement in statements:
        if (
            any(a.startswith("s3:") for a in actions(statement))
            and statement.get("Sid") not in BATCH_STATEMENTS
        ):
            text = json.dumps(statement)
            assert "DataBucket" in text and "InferenceBucket" not in text
            if "s3:ListBucket" not in actions(statement):
                resources = (
                    statement["Resource"]
                    if isinstance(statement["Resource"], list)
                    else [statement["Resource"]]
                )
                assert all("/" in json.dumps(r) for r in resources), statement


def test_the_sagemaker_role_pulls_an_overriding_image_from_the_accounts_repositories_only_then() -> None:
    """SageMaker pulls a job's or model's image with the execution role, so an image given in
    TrainingImageUri or InferenceImageUri (which need not be a `pytorch-*` repository) needs a grant."""
    (policy,) = RESOURCES["SageMakerExecutionRole"]["Properties"]["Policies"]
    conditional = {
        item["Fn::If"][0]: item["Fn::If"][1]
        for item in policy["PolicyDocument"]["Statement"]
        if isinstance(item, dict) and "Fn::If" in item
    }
    pull = conditional["HasImageOverride"]
    assert pull["Sid"] == "PullOverridingImages"
    assert pull["Resource"] == {
        "Fn::Sub": "arn:${AWS::Partition}:ecr:${AWS::Region}:${AWS::AccountId}:repository/*"
    }
    assert TEMPLATE["Conditions"]["HasImageOverride"] == {
        "Fn::Or": [{"Condition": "HasTrainingImageUri"}, {"Condition": "HasInferenceImageUri"}]
    }


BUCKETS = [lid for lid, r in RESOURCES.items() if r["Type"] == "AWS::S3::Bucket"]


@pytest.mark.parametrize("bucket", BUCKETS)
def test_every_bucket_sends_events_to_eventbridge(bucket: str) -> None:
    properties = RESOURCES[bucket]["Properties"]
    assert properties["NotificationConfiguration"]["EventBridgeConfiguration"]["EventBridgeEnabled"] is True


def test_inference_results_expire() -> None:
    rules = RESOURCES["InferenceBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    assert {"results/", "rejected/"} <= {rule.get("Prefix") for rule in rules}


@pytest.mark.parametrize(
    ("table", "key", "ttl"),
    [
        ("PredictionsTable", "prediction_id", "expires_at"),
        ("RunsTable", "run_id", None),
        ("IdempotencyTable", "id", "expiration"),
    ],
)
def test_tables_have_their_keys_ttl_and_pitr_in_prod(table: str, key: str, ttl: str | None) -> None:
    properties = RESOURCES[table]["Properties"]
    assert properties["KeySchema"] == [{"AttributeName": key, "KeyType": "HASH"}]
    if ttl:
        assert properties["TimeToLiveSpecification"] == {"AttributeName": ttl, "Enabled": True}
    assert properties["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] == {
        "Fn::If": ["IsProd", True, False]
    }


def test_dataset_manifest_rule_starts_the_pipeline_with_retries_and_a_dlq() -> None:
    event = RESOURCES["TrainingPipeline"]["Properties"]["Events"]["DatasetManifest"]
    assert event["Type"] == "EventBridgeRule"
    pattern = event["Properties"]["Pattern"]
    assert pattern["detail"]["object"]["key"] == [{"wildcard": "datasets/*/manifest.json"}]
    assert pattern["detail"]["bucket"]["name"] == [{"Ref": "DataBucket"}]
    assert event["Properties"]["RetryPolicy"]["MaximumRetryAttempts"] >= 1
    assert event["Properties"]["DeadLetterConfig"]["Arn"] == {"Fn::GetAtt": ["PipelineTriggerDLQ", "Arn"]}


def test_alarms_cover_endpoint_errors_latency_lambdas_and_pipeline_failures() -> None:
    alarms = [r["Properties"] for r in RESOURCES.values() if r["Type"] == "AWS::CloudWatch::Alarm"]
    metrics = {(a["Namespace"], a["MetricName"]) for a in alarms}
    assert {
        ("AWS/SageMaker", "Invocation5XXErrors"),
        ("AWS/SageMaker", "ModelLatency"),
        ("AWS/Lambda", "Errors"),
        ("AWS/Lambda", "Throttles"),
        ("AWS/States", "ExecutionsFailed"),
    } <= metrics
    latency = next(a for a in alarms if a["MetricName"] == "ModelLatency")
    assert latency["ExtendedStatistic"] == "p99"


def test_log_groups_have_retention() -> None:
    groups = [r["Properties"] for r in RESOURCES.values() if r["Type"] == "AWS::Logs::LogGroup"]
    assert groups and all(g["RetentionInDays"] == {"Ref": "LogRetentionDays"} for g in groups)


def test_tunables_are_documented_parameters() -> None:
    parameters = TEMPLATE["Parameters"]
    for name in (
        "TrainingImageUri",
        "InferenceImageUri",
        "TuningInstanceType",
        "TrainingInstanceType",
        "EndpointInstanceType",
        "FinalTrainingInstanceCount",
        "MaxTuningJobs",
        "MaxParallelTuningJobs",
        "TuningRandomSeed",
        "AccuracyThreshold",
        "EndpointMinInstances",
        "EndpointMaxInstances",
        "ScalingTargetInvocationsPerInstance",
        "ScaleInCooldownSeconds",
        "ScaleOutCooldownSeconds",
        "UseSpotTraining",
        "ReuseTuningArtifact",
        "FinalModelTolerance",
        "FinalModelFallback",
        "ApprovalMode",
        "ApprovalTimeoutSeconds",
        "RolloutTrafficRouting",
        "RolloutStepPercent",
        "RolloutBakeSeconds",
        "DeployLockPollSeconds",
        "DeployLockMaxPolls",
        "DeployLockLeaseSeconds",
    ):
        assert parameters[name].get("Description"), name
    assert parameters["FinalTrainingInstanceCount"]["Default"] == 2


def test_outputs_name_what_users_and_tests_need() -> None:
    outputs = TEMPLATE["Outputs"]
    for name in (
        "DataBucketName",
        "RunsTableName",
        "ModelPackageGroupName",
        "TrainingPipelineArn",
        "SageMakerExecutionRoleArn",
        "EndpointName",
    ):
        assert name in outputs


@pytest.mark.parametrize(
    ("bucket", "key", "starts"),
    [
        ("own", "datasets/dogimages-v1/manifest.json", True),
        ("own", "datasets/dogimages-v1/train/001.Affenpinscher/a.jpg", False),
        ("own", "models/manifest.json", False),
        ("other", "datasets/dogimages-v1/manifest.json", False),
    ],
)
def test_only_a_dataset_manifest_in_the_data_bucket_matches_the_trigger(
    bucket: str, key: str, starts: bool
) -> None:
    from moto.events.models import EventPattern

    from dogbreed.template_stack import TemplateStack

    stack = TemplateStack.load()
    event_spec = stack.resources["TrainingPipeline"]["Properties"]["Events"]["DatasetManifest"]
    pattern = stack.resolve(event_spec["Properties"]["Pattern"])
    data_bucket = stack.physical_name("DataBucket")
    event: Any = {
        "source": "aws.s3",
        "detail-type": "Object Created",
        "detail": {
            "bucket": {"name": data_bucket if bucket == "own" else "elsewhere"},
            "object": {"key": key},
        },
    }
    assert EventPattern(json.dumps(pattern), pattern).matches_event(event) is starts
