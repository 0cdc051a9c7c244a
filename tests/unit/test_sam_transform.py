"""What CloudFormation really gets from template.yaml: the real SAM transform
(src/dogbreed/aws/sam_transform.py) run with different parameter values, read for what the deployment will do.

- Versions: `live` must move to a new function version whenever anything the function sees
  changes. A version is published when SAM gives it a new logical id, or when CloudFormation must
  replace it because one of its create-only properties (AWS's resource schema for
  AWS::Lambda::Version, bundled with cfn-lint) resolves to a new value; the alias follows the
  version through `Fn::GetAtt <version>.Version`.
- Stages: the REST API deploys exactly the configured stage (no extra `Stage` stage).
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import botocore.session
import pytest
from cfnlint.schema import PROVIDER_SCHEMA_MANAGER  # type: ignore[import-untyped]

from dogbreed.aws.sam_transform import REGION, translate
from tests.support.templates import load_template

TEMPLATE = load_template()
VERSIONED = ("PredictApiFunction", "PredictS3Function")
# One other valid value per parameter a function can read (environment, VPC); the VPC pair moves
# together, as the template's Rules demand. A parameter the functions read without an entry here
# fails test_every_parameter_a_function_reads_is_varied.
VARIATIONS: dict[str, dict[str, str]] = {
    "CorsAllowOrigin": {"CorsAllowOrigin": "https://app.example.com"},
    "MaxImageBytes": {"MaxImageBytes": "2097152"},
    "PredictionTtlDays": {"PredictionTtlDays": "7"},
    "LowConfidenceProbability": {"LowConfidenceProbability": "0.3"},
    "VpcSubnetIds": {
        "VpcSubnetIds": "subnet-0a1b2c3d4e5f60718,subnet-0f1e2d3c4b5a69788",
        "VpcSecurityGroupIds": "sg-0a1b2c3d4e5f60718",
    },
    "VpcSecurityGroupIds": {
        "VpcSubnetIds": "subnet-0a1b2c3d4e5f60718",
        "VpcSecurityGroupIds": "sg-0a1b2c3d4e5f60718,sg-0f1e2d3c4b5a69788",
    },
}
VPC_BASE = {"VpcSubnetIds": "subnet-0a1b2c3d4e5f60718", "VpcSecurityGroupIds": "sg-0a1b2c3d4e5f60718"}
VERSION_CREATE_ONLY = [
    path.rsplit("/", 1)[-1]
    for path in PROVIDER_SCHEMA_MANAGER.get_resource_schema(REGION, "AWS::Lambda::Version").schema[
        "createOnlyProperties"
    ]
]
_SUB_NAME = re.compile(r"\$\{([^}!.]+)\}")


def parameter_sets() -> list[dict[str, str]]:
    """The defaults, a VPC baseline, each variation, and the defaults again (last)."""
    return [{}, dict(VPC_BASE), *VARIATIONS.values(), {}]


def with_shorter_timeouts() -> dict[str, Any]:
    """The template with each versioned function's timeout changed (a literal, no parameter)."""
    changed = copy.deepcopy(TEMPLATE)
    for function in VERSIONED:
        properties = changed["Resources"][function]["Properties"]
        properties["Timeout"] = int(properties.get("Timeout", TEMPLATE["Globals"]["Function"]["Timeout"])) - 1
    return changed


@pytest.fixture(scope="module")
def transformed() -> list[dict[str, Any]]:
    return translate(TEMPLATE, parameter_sets())


@pytest.fixture(scope="module")
def transformed_with_shorter_timeouts() -> dict[str, Any]:
    return translate(with_shorter_timeouts(), [{}])[0]


def resolve_parameters(value: Any, parameters: dict[str, str]) -> Any:
    """`Ref`s and `${Name}`s of template parameters replaced by their values (defaults filled in), as
    CloudFormation resolves them; every other intrinsic is left as it is (the same in both runs)."""
    values = {name: str(spec.get("Default", "")) for name, spec in TEMPLATE["Parameters"].items()}
    values.update(parameters)
    if isinstance(value, list):
        return [resolve_parameters(item, parameters) for item in value]
    if not isinstance(value, dict):
        return value
    if set(value) == {"Ref"} and value["Ref"] in values:
        return values[value["Ref"]]
    if set(value) == {"Fn::Sub"} and isinstance(value["Fn::Sub"], str):
        return _SUB_NAME.sub(lambda m: values.get(m.group(1), m.group(0)), value["Fn::Sub"])
    return {key: resolve_parameters(item, parameters) for key, item in value.items()}


def referenced_parameters(value: Any) -> set[str]:
    names = set(TEMPLATE["Parameters"])
    found: set[str] = set()
    if isinstance(value, list):
        for item in value:
            found |= referenced_parameters(item)
    elif isinstance(value, dict):
        if set(value) == {"Ref"} and value["Ref"] in names:
            found.add(value["Ref"])
        for key, item in value.items():
            if key == "Fn::Sub" and isinstance(item, str):
                found |= set(_SUB_NAME.findall(item)) & names
            found |= referenced_parameters(item)
    return found


def live_version(template: dict[str, Any], function: str, parameters: dict[str, str]) -> tuple[str, Any]:
    """What decides publication: the version the alias points at, its logical id and its resolved
    create-only properties."""
    resources = template["Resources"]
    alias = resources[f"{function}Aliaslive"]
    version_id, attribute = alias["Properties"]["FunctionVersion"]["Fn::GetAtt"]
    assert attribute == "Version"
    version = resources[version_id]
    assert version["Type"] == "AWS::Lambda::Version"
    create_only = {k: v for k, v in version["Properties"].items() if k in VERSION_CREATE_ONLY}
    return version_id, resolve_parameters(create_only, parameters)


def function_sees(template: dict[str, Any], function: str) -> dict[str, Any]:
    properties = template["Resources"][function]["Properties"]
    return {key: properties[key] for key in ("Environment", "VpcConfig") if key in properties}


# --- versions --------------------------------------------------------------------------------------


@pytest.mark.parametrize("function", VERSIONED)
def test_every_parameter_a_function_reads_is_varied(transformed: list[dict[str, Any]], function: str) -> None:
    # Given the function's environment and VPC settings after the transform
    read = referenced_parameters(function_sees(transformed[0], function))

    # Then each parameter in them has a variation below (so the next tests cover it)
    assert read
    assert read <= set(VARIATIONS), f"{function} reads {sorted(read - set(VARIATIONS))} with no variation"


def reads(function: str) -> set[str]:
    """Parameters in the function's environment and VPC settings, Globals included (the source
    template; test_every_parameter_a_function_reads_is_varied checks the transformed one)."""
    own = TEMPLATE["Resources"][function]["Properties"]
    shared = TEMPLATE["Globals"]["Function"]
    return referenced_parameters([own.get("Environment"), shared.get("Environment"), shared.get("VpcConfig")])


@pytest.mark.parametrize(
    ("function", "changed"), [(f, p) for f in VERSIONED for p in sorted(VARIATIONS) if p in reads(f)]
)
def test_a_changed_parameter_the_function_reads_publishes_a_new_live_version(
    transformed: list[dict[str, Any]], function: str, changed: str
) -> None:
    sets = parameter_sets()
    index = sets.index(VARIATIONS[changed])
    baseline = 1 if "VpcSubnetIds" in VARIATIONS[changed] else 0  # VPC changes start from a VPC

    # When the template is deployed with the parameter changed
    before = live_version(transformed[baseline], function, sets[baseline])
    after = live_version(transformed[index], function, sets[index])

    # Then `live` points at a version CloudFormation must create anew
    assert before != after, f"changing {changed} leaves {function}'s live alias on the old version"


@pytest.mark.parametrize("function", VERSIONED)
def test_a_changed_function_property_publishes_a_new_live_version(
    transformed: list[dict[str, Any]], transformed_with_shorter_timeouts: dict[str, Any], function: str
) -> None:
    # Given the template with the function's timeout changed, transformed like the original
    before = live_version(transformed[0], function, {})
    after = live_version(transformed_with_shorter_timeouts, function, {})

    # Then the alias points at a version with a new logical id
    assert before[0] != after[0]


@pytest.mark.parametrize("function", VERSIONED)
def test_the_same_parameters_keep_the_same_live_version(
    transformed: list[dict[str, Any]], function: str
) -> None:
    # A redeploy with nothing changed must not churn versions (it would reset provisioned concurrency)
    assert live_version(transformed[-1], function, {}) == live_version(transformed[0], function, {})


@pytest.mark.parametrize("function", VERSIONED)
def test_the_version_description_fits_lambdas_limit_for_the_longest_allowed_parameters(function: str) -> None:
    # Given each parameter in the version description at its longest allowed value
    description = TEMPLATE["Resources"][function]["Properties"]["VersionDescription"]["Fn::Sub"]
    limit = PROVIDER_SCHEMA_MANAGER.get_resource_schema(REGION, "AWS::Lambda::Version").schema["properties"][
        "Description"
    ]["maxLength"]
    sagemaker = botocore.session.get_session().get_service_model("sagemaker")
    endpoint_name_max = (
        sagemaker.operation_model("CreateEndpoint").input_shape.members["EndpointName"].metadata["max"]
    )

    def longest(name: str) -> int:
        if name == "AWS::StackName":  # the endpoint's name: SageMaker's API model bounds it
            return int(endpoint_name_max)
        spec = TEMPLATE["Parameters"][name]
        if "MaxLength" in spec:
            return int(spec["MaxLength"])
        return len(str(int(spec["MaxValue"])))

    # Then the resolved description stays within AWS::Lambda::Version's Description limit
    names = _SUB_NAME.findall(description)
    assert len(_SUB_NAME.sub("", description)) + sum(longest(n) for n in names) <= limit


# --- stages ----------------------------------------------------------------------------------------


def test_the_api_deploys_only_the_configured_stage(transformed: list[dict[str, Any]]) -> None:
    resources = transformed[0]["Resources"]
    stages = [
        r["Properties"]["StageName"] for r in resources.values() if r["Type"] == "AWS::ApiGateway::Stage"
    ]
    deployments = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::ApiGateway::Deployment"]

    # One Stage resource, the Stage parameter's; no deployment that creates a stage of its own
    assert stages == [{"Ref": "Stage"}]
    assert deployments and all("StageName" not in deployment for deployment in deployments)


# --- API Gateway's own answers ---------------------------------------------------------------------


def test_the_gateway_responses_reach_the_api_in_the_apis_error_envelope(
    transformed: list[dict[str, Any]],
) -> None:
    # Given the RestApi CloudFormation gets
    [api] = [r for r in transformed[0]["Resources"].values() if r["Type"] == "AWS::ApiGateway::RestApi"]
    responses = api["Properties"]["Body"]["x-amazon-apigateway-gateway-responses"]

    # Then every answer API Gateway makes itself carries the envelope, an unknown route is a 404
    assert {"DEFAULT_4XX", "DEFAULT_5XX", "MISSING_AUTHENTICATION_TOKEN", "THROTTLED"} <= set(responses)
    for response in responses.values():
        body = json.loads(response["responseTemplates"]["application/json"])
        assert set(body["error"]) == {"code", "message"}
    assert responses["MISSING_AUTHENTICATION_TOKEN"]["statusCode"] == "404"


def test_prod_releases_the_prediction_functions_through_a_codedeploy_canary_on_their_error_alarms() -> None:
    # Given the two parameter sets the samconfig environments deploy with
    dev, prod = translate(TEMPLATE, [{}, {"Stage": "prod", "PredictionFunctionsCanary": "true"}])

    # Then dev moves `live` at once (no CodeDeploy), prod shifts it 10% for 5 minutes, each function
    # rolled back by its own error alarm
    assert not [name for name, resource in dev["Resources"].items() if "CodeDeploy" in resource["Type"]]
    for function, alarm in (
        ("PredictApiFunction", "PredictApiErrorsAlarm"),
        ("PredictS3Function", "PredictS3ErrorsAlarm"),
    ):
        group = prod["Resources"][f"{function}DeploymentGroup"]["Properties"]
        assert group["AlarmConfiguration"]["Alarms"] == [{"Name": {"Ref": alarm}}]
        assert group["DeploymentConfigName"]["Fn::Sub"][1]["ConfigName"] == "Canary10Percent5Minutes"
        assert "DEPLOYMENT_STOP_ON_ALARM" in group["AutoRollbackConfiguration"]["Events"]
        [alias] = [
            r
            for r in prod["Resources"].values()
            if r["Type"] == "AWS::Lambda::Alias" and r["Properties"]["FunctionName"] == {"Ref": function}
        ]
        assert alias["UpdatePolicy"]["CodeDeployLambdaAliasUpdate"]["DeploymentGroupName"] == {
            "Ref": f"{function}DeploymentGroup"
        }
