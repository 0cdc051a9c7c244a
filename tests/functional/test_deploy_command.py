"""`dogbreed deploy` on "AWS": moto's CloudFormation and S3 stand in for the account and a fake SAM CLI
creates or updates a stack with the template's code outputs, so what is observed is the order and
the result: the training code is in the data bucket under the version the stack makes current,
before the stack makes it current whenever the bucket exists already. The CLI's own failures (no SAM,
no credentials, a failed stack) end with a message and exit code 1, and `--check` prints the
preflight table from stubbed AWS answers."""

from __future__ import annotations

import datetime as dt
import json
import shlex
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from dogbreed import cli, stack_deploy
from dogbreed.packaging import SourceArchive, source_tarball
from dogbreed.stack_deploy import (
    DeployError,
    SamDeployer,
    deploy_with_training_code,
    training_code_key,
)
from dogbreed.stack_target import StackTarget, samconfig_overrides
from tests.support.deploy_support import (
    DLC_REGISTRY,
    StubbedAccount,
    StubbedSession,
    account_settings,
    caller_identity,
    image_details,
    quota,
)

TARGET = StackTarget(name="dogbreed-dev", region="us-east-1", section="default")
# The template's code outputs and the parameter behind them (template.yaml: TrainingCodeS3Uri).
STACK_TEMPLATE: dict[str, Any] = {
    "Parameters": {
        "TrainingCodeVersion": {"Type": "String", "Default": "v1"},
        "Stage": {"Type": "String", "Default": "dev"},
    },
    "Resources": {"DataBucket": {"Type": "AWS::S3::Bucket"}},
    "Outputs": {
        "DataBucketName": {"Value": {"Ref": "DataBucket"}},
        "TrainingCodeS3Uri": {
            "Value": {"Fn::Sub": "s3://${DataBucket}/code/${TrainingCodeVersion}/sourcedir.tar.gz"}
        },
    },
}


class FakeSam:
    """`sam build` succeeds; `sam deploy` creates or updates the stack in moto with the overrides the
    template knows, noting whether the new version's code was in the bucket at that moment."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self.commands: list[list[str]] = []
        self.code_in_place_at_deploy: list[bool] = []
        self.deploy_exit_code = 0

    def __call__(self, command: list[str]) -> int:
        self.commands.append(command)
        if command[1] == "build":
            return 0
        overrides = dict(
            item.split("=", 1) for item in shlex.split(command[command.index("--parameter-overrides") + 1])
        )
        cloudformation = self.session.client("cloudformation")
        stack = command[command.index("--stack-name") + 1]
        parameters = [
            {"ParameterKey": key, "ParameterValue": value}
            for key, value in overrides.items()
            if key in STACK_TEMPLATE["Parameters"]
        ]
        try:
            outputs = cloudformation.describe_stacks(StackName=stack)["Stacks"][0]["Outputs"]
        except cloudformation.exceptions.ClientError:
            cloudformation.create_stack(
                StackName=stack, TemplateBody=json.dumps(STACK_TEMPLATE), Parameters=parameters
            )
            self.code_in_place_at_deploy.append(False)
            return self.deploy_exit_code
        bucket = next(o["OutputValue"] for o in outputs if o["OutputKey"] == "DataBucketName")
        key = training_code_key(overrides["TrainingCodeVersion"])
        listed = self.session.client("s3").list_objects_v2(Bucket=bucket, Prefix=key).get("KeyCount", 0)
        self.code_in_place_at_deploy.append(listed == 1)
        try:
            cloudformation.update_stack(
                StackName=stack, TemplateBody=json.dumps(STACK_TEMPLATE), Parameters=parameters
            )
        except cloudformation.exceptions.ClientError as error:
            if "No updates are to be performed" not in str(error):  # --no-fail-on-empty-changeset
                raise
        return self.deploy_exit_code


@pytest.fixture
def session(monkeypatch: pytest.MonkeyPatch) -> Iterator[boto3.session.Session]:
    for key in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        yield boto3.session.Session(region_name="us-east-1")


def _archive(marker: str) -> SourceArchive:
    return SourceArchive(data=f"sourcedir {marker}".encode(), content_hash=f"{marker:0<64}")


def _code(session: Any, uri: str) -> bytes:
    bucket, key = stack_deploy.split_s3_uri(uri)
    body: bytes = session.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    return body


def _deploy(session: Any, sam: FakeSam, archive: SourceArchive) -> stack_deploy.DeployResult:
    deployer = SamDeployer(TARGET, session, "sam", run=sam)
    return deploy_with_training_code(deployer, {"Stage": "dev"}, archive, log=lambda _: None)


def test_a_first_deploy_uploads_the_code_once_the_stack_has_its_bucket(session: Any) -> None:
    sam = FakeSam(session)

    result = _deploy(session, sam, _archive("a1"))

    assert result.outputs["TrainingCodeS3Uri"] == result.code.uri
    assert result.code.uri.endswith(f"/code/{_archive('a1').version}/sourcedir.tar.gz")
    assert _code(session, result.code.uri) == b"sourcedir a1"


def test_on_a_deployed_stack_the_new_code_is_in_place_before_the_deploy_makes_it_current(
    session: Any,
) -> None:
    sam = FakeSam(session)
    first = _deploy(session, sam, _archive("a1"))

    second = _deploy(session, sam, _archive("b2"))

    assert sam.code_in_place_at_deploy == [False, True]
    assert second.code.uri != first.code.uri
    # the runs that started on the first version keep theirs
    assert _code(session, first.code.uri) == b"sourcedir a1"
    assert _code(session, second.code.uri) == b"sourcedir b2"


def test_a_redeploy_of_the_same_code_uploads_nothing(session: Any) -> None:
    sam = FakeSam(session)
    _deploy(session, sam, _archive("a1"))

    again = _deploy(session, sam, _archive("a1"))

    assert again.uploads == [] and not again.code.uploaded


def test_sam_builds_and_deploys_with_the_environment_and_the_code_version(session: Any) -> None:
    sam = FakeSam(session)
    archive = source_tarball()
    deployer = SamDeployer(TARGET, session, "sam", confirm=False, run=sam)

    deploy_with_training_code(deployer, samconfig_overrides("default"), archive, log=lambda _: None)

    build, deploy = sam.commands
    assert build == ["sam", "build", "--config-env", "default"]
    assert deploy[:8] == [
        "sam",
        "deploy",
        "--config-env",
        "default",
        "--region",
        "us-east-1",
        "--stack-name",
        "dogbreed-dev",
    ]
    overrides = dict(
        item.split("=", 1) for item in shlex.split(deploy[deploy.index("--parameter-overrides") + 1])
    )
    assert overrides == {**samconfig_overrides("default"), "TrainingCodeVersion": archive.version}
    assert {"--no-fail-on-empty-changeset", "--no-confirm-changeset"} <= set(deploy)
    assert "--guided" not in deploy


def test_the_code_version_is_not_an_override_to_give(session: Any) -> None:
    deployer = SamDeployer(TARGET, session, "sam", run=FakeSam(session))

    with pytest.raises(DeployError, match="TrainingCodeVersion is set by dogbreed deploy"):
        deploy_with_training_code(deployer, {"TrainingCodeVersion": "v9"}, _archive("a1"))


def test_a_failed_stack_names_its_first_failed_resource() -> None:
    # Given CloudFormation's events of a failed update (stubbed: moto does not fail resources)
    stubbed = StubbedAccount()
    now = dt.datetime.now(dt.UTC)
    event = {
        "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/dogbreed-dev/1",
        "StackName": "dogbreed-dev",
        "EventId": "1",
        "Timestamp": now,
    }
    stubbed.stub("cloudformation").add_response(
        "describe_stack_events",
        {
            "StackEvents": [
                {**event, "LogicalResourceId": "dogbreed-dev", "ResourceStatus": "UPDATE_ROLLBACK_COMPLETE"},
                {
                    **event,
                    "LogicalResourceId": "PredictApiFunction",
                    "ResourceStatus": "UPDATE_FAILED",
                    "ResourceStatusReason": "Specified ReservedConcurrentExecutions decreases "
                    "account's UnreservedConcurrentExecution below its minimum value of [100].",
                },
            ]
        },
    )
    deployer = SamDeployer(TARGET, StubbedSession(stubbed), "sam", run=lambda command: 1)

    with stubbed.active(), pytest.raises(DeployError) as raised:
        deployer.deploy({"Stage": "dev"})

    assert (
        "failed (exit 1); first failure: PredictApiFunction: Specified ReservedConcurrentExecutions"
        in str(raised.value)
    )


# --- the command ---------------------------------------------------------------------------------


def test_without_the_sam_cli_the_command_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Any
) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("DOGBREED_SAM_CLI", raising=False)
    monkeypatch.setattr(stack_deploy, "PROJECT_SAM", tmp_path / "no-sam")
    monkeypatch.setenv("PATH", str(tmp_path))

    code = cli.main(["deploy"])

    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("dogbreed deploy: the SAM CLI is not installed: run `make sam-install`")
    assert "Traceback" not in err


def test_without_credentials_the_command_says_how_to_get_them(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Any
) -> None:
    for key in (
        "AWS_ENDPOINT_URL",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
    ):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setattr(stack_deploy, "find_sam", lambda: "sam")

    code = cli.main(["deploy", "--config-env", "prod"])

    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("dogbreed deploy: no AWS credentials found: run `aws configure`")
    assert "Traceback" not in err


def _new_account() -> StubbedAccount:
    """A new account in us-east-1: the DLC images are there, Lambda's limit is reduced to 10, GPU
    spot training is at its default of 0, endpoints at 4."""
    stubbed = StubbedAccount()
    stubbed.stub("sts").add_response("get_caller_identity", caller_identity())
    ecr = stubbed.stub("ecr")
    ecr.add_response("describe_images", image_details("pytorch-training", "2.6.0-gpu-py312"))
    ecr.add_response("describe_images", image_details("pytorch-inference", "2.6.0-cpu-py312"))
    stubbed.stub("lambda").add_response("get_account_settings", account_settings(10, 10))
    stubbed.stub("cloudformation").add_client_error(
        "list_stack_resources", "ValidationError", "Stack with id dogbreed-dev does not exist", 400
    )
    quotas = stubbed.stub("service-quotas")
    quotas.add_response(
        "list_aws_default_service_quotas",
        {
            "Quotas": [
                quota("ml.g4dn.xlarge for spot training job usage", "L-SPOTG4DN", 0),
                quota("ml.g4dn.xlarge for training job usage", "L-3F53BF0F", 0),
                quota("ml.m5.large for endpoint usage", "L-ENDPTM5L", 4),
            ]
        },
    )
    quotas.add_response("list_service_quotas", {"Quotas": []})
    return stubbed


def test_check_prints_what_to_raise_and_fails(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    stubbed = _new_account()
    monkeypatch.setattr(StackTarget, "session", lambda self: StubbedSession(stubbed))

    with stubbed.active():
        code = cli.main(["deploy", "--check", "--parameter-overrides", "S3ReservedConcurrency=10"])

    out = capsys.readouterr().out
    print(out)  # the table, for `pytest -s`
    rows = {line.split("  ")[0]: line for line in out.splitlines() if not line.startswith(" ")}
    assert code == 1
    assert rows["ml.g4dn.xlarge for spot training job usage"].rstrip().endswith("RAISE")
    assert rows["Lambda concurrency"].rstrip().endswith("RAISE")
    assert rows["training image"].rstrip().endswith("OK")
    assert f"{DLC_REGISTRY}/pytorch-inference:2.6.0-cpu-py312" in rows["inference image"]
    assert "--quota-code L-SPOTG4DN --desired-value 2 --region us-east-1" in out
    assert out.rstrip().endswith(
        "0 to fix, 2 to raise, 0 unverified: a first run would fail until they are done"
    )
