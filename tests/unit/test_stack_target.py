"""Which stack, which region and its outputs: samconfig.toml's environments, an explicit name and
region on top, and CloudFormation's answer for a stack that is not there (botocore Stubber)."""

from __future__ import annotations

from pathlib import Path

import botocore.session
import pytest
from botocore.stub import Stubber

from dogbreed.stack_target import (
    StackConfigError,
    StackNotFound,
    find_stack_outputs,
    samconfig_overrides,
    stack_name_of,
    stack_outputs,
    stack_target,
)

SAMCONFIG = """
version = 0.1
[default.global.parameters]
stack_name = "app-dev"
region = "eu-west-1"
[default.deploy.parameters]
parameter_overrides = "Stage=dev AlarmEmail='ops@example.com'"
[prod.global.parameters]
stack_name = "app-prod"
[prod.deploy.parameters]
parameter_overrides = ["Stage=prod", "MaxTuningJobs=20"]
"""


@pytest.fixture
def samconfig(tmp_path: Path) -> Path:
    path = tmp_path / "samconfig.toml"
    path.write_text(SAMCONFIG)
    return path


def test_the_projects_environments_name_their_stacks() -> None:
    assert stack_name_of("dev") == "dogbreed-dev"
    assert stack_name_of("prod") == "dogbreed-prod"


def test_dev_is_samconfigs_default_section_with_its_region(samconfig: Path) -> None:
    target = stack_target("dev", path=samconfig)

    assert (target.name, target.region, target.section) == ("app-dev", "eu-west-1", "default")


def test_a_stack_name_and_region_given_replace_samconfigs(samconfig: Path) -> None:
    target = stack_target("prod", stack="app-test", region="us-west-2", path=samconfig)

    assert (target.name, target.region, target.section) == ("app-test", "us-west-2", "prod")


def test_an_environment_without_a_region_leaves_it_to_the_aws_configuration(samconfig: Path) -> None:
    assert stack_target("prod", path=samconfig).region is None


def test_parameter_overrides_read_as_sam_writes_them_string_or_list(samconfig: Path) -> None:
    assert samconfig_overrides("default", samconfig) == {"Stage": "dev", "AlarmEmail": "ops@example.com"}
    assert samconfig_overrides("prod", samconfig) == {"Stage": "prod", "MaxTuningJobs": "20"}


def test_an_unknown_environment_is_a_config_error(samconfig: Path) -> None:
    with pytest.raises(StackConfigError, match="unknown environment 'staging'"):
        stack_target("staging", path=samconfig)


def _cloudformation() -> tuple[object, Stubber]:
    client = botocore.session.get_session().create_client(
        "cloudformation",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    return client, Stubber(client)


def test_a_stack_that_does_not_exist_has_no_outputs() -> None:
    client, stubber = _cloudformation()
    stubber.add_client_error(
        "describe_stacks", "ValidationError", "Stack with id app-dev does not exist", 400
    )
    stubber.add_client_error(
        "describe_stacks", "ValidationError", "Stack with id app-dev does not exist", 400
    )

    with stubber:
        assert find_stack_outputs(client, "app-dev") is None
        with pytest.raises(StackNotFound, match="dogbreed deploy"):
            stack_outputs(client, "app-dev")


def test_a_deployed_stacks_outputs_by_key() -> None:
    client, stubber = _cloudformation()
    stubber.add_response(
        "describe_stacks",
        {
            "Stacks": [
                {
                    "StackName": "app-dev",
                    "CreationTime": "2025-01-01T00:00:00Z",
                    "StackStatus": "UPDATE_COMPLETE",
                    "Outputs": [{"OutputKey": "DataBucketName", "OutputValue": "app-dev-databucket-1"}],
                }
            ]
        },
        {"StackName": "app-dev"},
    )

    with stubber:
        assert stack_outputs(client, "app-dev") == {"DataBucketName": "app-dev-databucket-1"}
