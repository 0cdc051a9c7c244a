"""template.yaml's security controls, asserted for every resource of each kind rather than for a
hand-picked one: least-privilege IAM, encryption at rest, TLS-only resource policies, no public
access, API throttling and access logs, reserved concurrency, and the network settings of the
functions and the SageMaker jobs. docs/security.md says what each control stops.

Resource-specific rules stay beside the code they protect (tests/unit/test_lambda_template.py:
the functions' exact S3/DynamoDB/endpoint scopes; tests/unit/test_template_pipeline.py: the state
machine's and SageMaker role's scopes, tables, trigger, alarms)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from dogbreed import STATE_MACHINE_PATH
from dogbreed.template_stack import TemplateStack
from tests.support.templates import (
    IDENTITY_TYPES,
    NO_VALUE,
    RESOURCE_POLICIES,
    actions,
    as_list,
    branches,
    identity_statements,
    load_template,
    resource_policy_statements,
)

TEMPLATE = load_template()
RESOURCES: dict[str, dict[str, Any]] = TEMPLATE["Resources"]
PARAMETERS: dict[str, dict[str, Any]] = TEMPLATE["Parameters"]
ASL_STATES: dict[str, dict[str, Any]] = json.loads(STATE_MACHINE_PATH.read_text(encoding="utf-8"))["States"]
TLS_ONLY = {"Bool": {"aws:SecureTransport": "false"}}

# Actions AWS authorises only on Resource "*" (the Service Authorization Reference lists no
# resource type for them), each with why this stack needs it. (X-Ray comes from the
# AWSXrayWriteOnlyAccess policy SAM attaches for Tracing, not from an inline statement.)
STAR_ONLY_ACTIONS: dict[str, str] = {
    "ecr:GetAuthorizationToken": "the registry login token is account-wide; image pulls are scoped",
    "cloudwatch:PutMetricData": "metrics have no ARN; the namespace condition limits it to /aws/sagemaker/*",
    "logs:CreateLogDelivery": "Step Functions log delivery (vended logs) has no resource type",
    "logs:GetLogDelivery": "Step Functions log delivery (vended logs) has no resource type",
    "logs:UpdateLogDelivery": "Step Functions log delivery (vended logs) has no resource type",
    "logs:DeleteLogDelivery": "Step Functions log delivery (vended logs) has no resource type",
    "logs:ListLogDeliveries": "Step Functions log delivery (vended logs) has no resource type",
    "logs:PutResourcePolicy": "CloudWatch Logs resource policies are account-wide",
    "logs:DescribeResourcePolicies": "CloudWatch Logs resource policies are account-wide",
    "logs:DescribeLogGroups": "Step Functions checks the destination log group with an account-wide listing",
    "ec2:DescribeNetworkInterfaces": "EC2 describe calls take no ARN (SageMaker in the optional VPC)",
    "ec2:DescribeVpcs": "EC2 describe calls take no ARN (SageMaker in the optional VPC)",
    "ec2:DescribeDhcpOptions": "EC2 describe calls take no ARN (SageMaker in the optional VPC)",
    "ec2:DescribeSubnets": "EC2 describe calls take no ARN (SageMaker in the optional VPC)",
    "ec2:DescribeSecurityGroups": "EC2 describe calls take no ARN (SageMaker in the optional VPC)",
    "sagemaker:ListEndpoints": "SageMaker list calls take no ARN (the pipeline's error-free endpoint probe)",
    "sagemaker:ListTags": "granted on * by AWS's generated policies for the SageMaker .sync integrations",
    "sagemaker:ListModels": "SageMaker list calls take no ARN (a batch's model version looked up by name)",
}
# SAM policy templates that expand to statements on one named resource of this stack.
SCOPED_SAM_POLICY_TEMPLATES = {"LambdaInvokePolicy": "FunctionName"}


def of_type(*types: str) -> list[str]:
    return sorted(lid for lid, resource in RESOURCES.items() if resource["Type"] in types)


def label(entry: tuple[str, dict[str, Any]]) -> str:
    logical_id, statement = entry
    return f"{logical_id}.{statement.get('Sid', '?')}"


ALLOWS = [entry for entry in identity_statements(RESOURCES) if entry[1]["Effect"] == "Allow"]
STAR_RESOURCE_ALLOWS = [entry for entry in ALLOWS if "*" in as_list(entry[1].get("Resource"))]
PASS_ROLE_ALLOWS = [entry for entry in ALLOWS if "iam:PassRole" in actions(entry[1])]
EVENTS_ALLOWS = [entry for entry in ALLOWS if any(a.startswith("events:") for a in actions(entry[1]))]
RESOURCE_ALLOWS = [entry for entry in resource_policy_statements(RESOURCES) if entry[1]["Effect"] == "Allow"]
SERVICE_ALLOWS = [entry for entry in RESOURCE_ALLOWS if "Service" in entry[1]["Principal"]]
# Everything but a key policy's administration by the account itself (asserted with the keys).
NAMED_ACTION_ALLOWS = [
    entry
    for entry in RESOURCE_ALLOWS
    if not (RESOURCES[entry[0]]["Type"] == "AWS::KMS::Key" and "AWS" in entry[1]["Principal"])
]


def policies_on(resource_id: str, policy_type: str) -> list[dict[str, Any]]:
    """The policy documents of `policy_type` resources that name `resource_id` as a target."""
    document_key, target_key = RESOURCE_POLICIES[policy_type]
    assert target_key is not None
    return [
        RESOURCES[lid]["Properties"][document_key]
        for lid in of_type(policy_type)
        if {"Ref": resource_id} in as_list(RESOURCES[lid]["Properties"][target_key])
    ]


def denies_insecure_transport(documents: list[dict[str, Any]], service: str) -> bool:
    return any(
        statement["Effect"] == "Deny"
        and statement["Principal"] == "*"
        and statement.get("Condition") == TLS_ONLY
        and any(a in (f"{service}:*", f"{service}:Publish") for a in actions(statement))
        for document in documents
        for statement in document["Statement"]
    )


# --- IAM ------------------------------------------------------------------------------------------


def test_no_full_access_managed_policy_is_named_anywhere() -> None:
    # Given the whole template as text (roles, SAM Policies, parameters, descriptions)
    text = json.dumps(TEMPLATE)

    # Then no AWS managed *FullAccess policy appears in it
    assert "FullAccess" not in text


@pytest.mark.parametrize("identity", of_type(*IDENTITY_TYPES))
def test_identities_get_inline_statements_not_managed_policies(identity: str) -> None:
    properties = RESOURCES[identity].get("Properties", {})

    assert not properties.get("ManagedPolicyArns"), identity
    for policy in (p for item in properties.get("Policies", []) or [] for p in branches(item)):
        assert not isinstance(policy, str), f"{identity} attaches the managed policy {policy}"
        if isinstance(policy, dict) and "Statement" not in policy and "PolicyDocument" not in policy:
            [(name, argument)] = policy.items()
            assert name in SCOPED_SAM_POLICY_TEMPLATES, f"{identity} uses the SAM policy template {name}"
            target = argument[SCOPED_SAM_POLICY_TEMPLATES[name]]
            assert isinstance(target, dict) and target.get("Ref") in RESOURCES, (identity, policy)


def test_the_stack_grants_iam_statements() -> None:
    # Guards the parametrized tests below against passing over an empty list
    assert len(ALLOWS) >= 30 and PASS_ROLE_ALLOWS and EVENTS_ALLOWS and STAR_RESOURCE_ALLOWS


@pytest.mark.parametrize("entry", ALLOWS, ids=label)
def test_no_wildcard_or_service_wide_action(entry: tuple[str, dict[str, Any]]) -> None:
    _, statement = entry

    assert "NotAction" not in statement
    for action in actions(statement):
        service, _, name = action.partition(":")
        assert service and name and "*" not in action, action


@pytest.mark.parametrize("entry", ALLOWS, ids=label)
def test_resource_star_only_for_actions_aws_authorises_on_star(entry: tuple[str, dict[str, Any]]) -> None:
    _, statement = entry

    assert "NotResource" not in statement
    if "*" in as_list(statement["Resource"]):
        assert set(actions(statement)) <= set(STAR_ONLY_ACTIONS), actions(statement)


def test_every_star_only_exception_is_in_use() -> None:
    used = {action for _, statement in STAR_RESOURCE_ALLOWS for action in actions(statement)}

    assert set(STAR_ONLY_ACTIONS) == used


@pytest.mark.parametrize("entry", PASS_ROLE_ALLOWS, ids=label)
def test_pass_role_names_a_stack_role_and_the_service_it_goes_to(entry: tuple[str, dict[str, Any]]) -> None:
    _, statement = entry

    assert actions(statement) == ["iam:PassRole"]
    for resource in as_list(statement["Resource"]):
        role, attribute = resource["Fn::GetAtt"]
        assert RESOURCES[role]["Type"] == "AWS::IAM::Role" and attribute == "Arn"
    service = statement["Condition"]["StringEquals"]["iam:PassedToService"]
    assert isinstance(service, str) and service.endswith(".amazonaws.com") and "*" not in service


def test_iam_actions_are_only_passing_a_role_and_one_service_linked_role() -> None:
    iam = [(lid, s) for lid, s in ALLOWS if any(a.startswith("iam:") for a in actions(s))]

    assert {a for _, s in iam for a in actions(s)} == {"iam:PassRole", "iam:CreateServiceLinkedRole"}
    for _, statement in iam:
        if "iam:CreateServiceLinkedRole" in actions(statement):
            assert "aws-service-role/" in json.dumps(statement["Resource"])
            assert statement["Condition"]["StringLike"]["iam:AWSServiceName"].endswith(".amazonaws.com")


@pytest.mark.parametrize("entry", EVENTS_ALLOWS, ids=label)
def test_event_rule_permissions_are_the_sagemaker_sync_rules_only(entry: tuple[str, dict[str, Any]]) -> None:
    _, statement = entry

    for resource in as_list(statement["Resource"]):
        assert re.search(r':rule/StepFunctionsGetEventsForSageMaker[A-Za-z]+Rule"}$', json.dumps(resource)), (
            resource
        )


@pytest.mark.parametrize("role", of_type("AWS::IAM::Role"))
def test_roles_trust_one_aws_service_on_behalf_of_this_account(role: str) -> None:
    [trust] = RESOURCES[role]["Properties"]["AssumeRolePolicyDocument"]["Statement"]

    assert trust["Effect"] == "Allow" and actions(trust) == ["sts:AssumeRole"]
    assert set(trust["Principal"]) == {"Service"}
    assert trust["Condition"]["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}


# --- resource policies and public access ----------------------------------------------------------


@pytest.mark.parametrize("entry", RESOURCE_ALLOWS, ids=label)
def test_resource_policies_allow_no_anonymous_principal(entry: tuple[str, dict[str, Any]]) -> None:
    _, statement = entry
    principals = [p for value in statement["Principal"].values() for p in as_list(value)]

    assert statement["Principal"] != "*" and "*" not in principals


@pytest.mark.parametrize("entry", NAMED_ACTION_ALLOWS, ids=label)
def test_resource_policies_grant_named_actions(entry: tuple[str, dict[str, Any]]) -> None:
    _, statement = entry

    for action in actions(statement):
        # kms:GenerateDataKey* is the documented grant for services that encrypt with a key.
        assert action == "kms:GenerateDataKey*" or "*" not in action, action


@pytest.mark.parametrize("entry", SERVICE_ALLOWS, ids=label)
def test_service_principals_act_only_for_this_stack(entry: tuple[str, dict[str, Any]]) -> None:
    # A service principal without a source condition could be used by any account (confused deputy).
    _, statement = entry
    condition = json.dumps(statement.get("Condition", {}))

    assert '"aws:SourceArn"' in condition or '"aws:SourceAccount"' in condition, statement


@pytest.mark.parametrize("bucket", of_type("AWS::S3::Bucket"))
def test_every_bucket_blocks_public_access(bucket: str) -> None:
    assert RESOURCES[bucket]["Properties"]["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }


# --- encryption at rest ---------------------------------------------------------------------------


@pytest.mark.parametrize("bucket", of_type("AWS::S3::Bucket"))
def test_every_bucket_encrypts_by_default(bucket: str) -> None:
    [rule] = RESOURCES[bucket]["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"]

    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms", "aws:kms:dsse")


@pytest.mark.parametrize("table", of_type("AWS::DynamoDB::Table"))
def test_every_table_is_encrypted(table: str) -> None:
    assert RESOURCES[table]["Properties"]["SSESpecification"]["SSEEnabled"] is True


@pytest.mark.parametrize("queue", of_type("AWS::SQS::Queue"))
def test_every_queue_is_encrypted(queue: str) -> None:
    properties = RESOURCES[queue]["Properties"]

    assert properties.get("SqsManagedSseEnabled") is True or properties.get("KmsMasterKeyId")


@pytest.mark.parametrize("topic", of_type("AWS::SNS::Topic"))
def test_every_topic_uses_a_stack_key_that_cloudwatch_alarms_may_use(topic: str) -> None:
    # The AWS managed alias/aws/sns key cannot grant CloudWatch: alarms to such a topic are dropped.
    key = RESOURCES[topic]["Properties"]["KmsMasterKeyId"]
    key_id = key["Ref"]
    grants = [
        statement
        for statement in RESOURCES[key_id]["Properties"]["KeyPolicy"]["Statement"]
        if statement["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    ]

    assert RESOURCES[key_id]["Type"] == "AWS::KMS::Key"
    assert grants and set(actions(grants[0])) == {"kms:Decrypt", "kms:GenerateDataKey*"}


@pytest.mark.parametrize("key", of_type("AWS::KMS::Key"))
def test_every_stack_key_rotates_and_is_administered_through_iam_only(key: str) -> None:
    properties = RESOURCES[key]["Properties"]
    wide = [s for s in properties["KeyPolicy"]["Statement"] if "kms:*" in actions(s)]

    assert properties["EnableKeyRotation"] is True
    assert [s["Principal"] for s in wide] == [
        {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}}
    ]


@pytest.mark.parametrize("group", of_type("AWS::Logs::LogGroup"))
def test_every_log_group_takes_the_optional_customer_key(group: str) -> None:
    assert RESOURCES[group]["Properties"]["KmsKeyId"] == {
        "Fn::If": ["HasLogsKmsKey", {"Ref": "LogsKmsKeyArn"}, NO_VALUE]
    }


@pytest.mark.parametrize("function", of_type("AWS::Serverless::Function"))
def test_every_function_logs_into_a_stack_log_group(function: str) -> None:
    # A group the stack owns has retention (and the optional key); one Lambda creates keeps logs forever.
    properties = RESOURCES[function]["Properties"]
    named = properties.get("LoggingConfig", {}).get("LogGroup")
    groups = {lid: RESOURCES[lid]["Properties"]["LogGroupName"] for lid in of_type("AWS::Logs::LogGroup")}

    if named is not None:
        assert named["Ref"] in groups
    else:
        assert {"Fn::Sub": f"/aws/lambda/${{{function}}}"} in groups.values()


def test_sagemaker_writes_models_and_checkpoints_only_into_the_encrypted_data_bucket() -> None:
    # SageMaker's outputs inherit the bucket's default encryption (asserted above for every bucket).
    names = ASL_STATES["CheckInput"]["Choices"][0]["Assign"]["names"]
    uris = {key: value for key, value in names.items() if key.endswith(("OutputUri", "CheckpointUri"))}

    assert len(uris) == 4
    for value in uris.values():
        assert value.startswith("{% 's3://' & $config.dataBucket & '/")
    substitutions = RESOURCES["TrainingPipeline"]["Properties"]["DefinitionSubstitutions"]
    assert substitutions["DataBucketName"] == {"Ref": "DataBucket"}


# --- TLS only -------------------------------------------------------------------------------------


@pytest.mark.parametrize("bucket", of_type("AWS::S3::Bucket"))
def test_every_bucket_denies_requests_without_tls(bucket: str) -> None:
    documents = policies_on(bucket, "AWS::S3::BucketPolicy")
    denies = [s for d in documents for s in d["Statement"] if s["Effect"] == "Deny"]

    assert denies_insecure_transport(documents, "s3")
    [deny] = [s for s in denies if s.get("Condition") == TLS_ONLY]
    assert deny["Resource"] == [
        {"Fn::GetAtt": [bucket, "Arn"]},
        {"Fn::Sub": f"${{{bucket}.Arn}}/*"},
    ]


@pytest.mark.parametrize("queue", of_type("AWS::SQS::Queue"))
def test_every_queue_denies_requests_without_tls(queue: str) -> None:
    assert denies_insecure_transport(policies_on(queue, "AWS::SQS::QueuePolicy"), "sqs")


@pytest.mark.parametrize("topic", of_type("AWS::SNS::Topic"))
def test_every_topic_denies_publishing_without_tls(topic: str) -> None:
    assert denies_insecure_transport(policies_on(topic, "AWS::SNS::TopicPolicy"), "sns")


# --- API and concurrency limits -------------------------------------------------------------------


@pytest.mark.parametrize("api", of_type("AWS::Serverless::Api", "AWS::ApiGateway::Stage"))
def test_every_api_stage_throttles_every_method_from_parameters(api: str) -> None:
    settings = RESOURCES[api]["Properties"]["MethodSettings"]
    [everything] = [s for s in settings if s["ResourcePath"] == "/*" and s["HttpMethod"] == "*"]

    for limit in ("ThrottlingRateLimit", "ThrottlingBurstLimit"):
        parameter = everything[limit]["Ref"]
        assert PARAMETERS[parameter]["Type"] == "Number" and PARAMETERS[parameter]["MinValue"] >= 1


@pytest.mark.parametrize("api", of_type("AWS::Serverless::Api"))
def test_api_access_log_goes_to_a_stack_log_group_when_enabled(api: str) -> None:
    condition, setting, otherwise = RESOURCES[api]["Properties"]["AccessLogSetting"]["Fn::If"]
    group = setting["DestinationArn"]["Fn::GetAtt"][0]

    assert otherwise == NO_VALUE and PARAMETERS["ApiAccessLogging"]["Default"] == "false"
    assert TEMPLATE["Conditions"][condition] == {"Fn::Equals": [{"Ref": "ApiAccessLogging"}, "true"]}
    assert RESOURCES[group]["Type"] == "AWS::Logs::LogGroup"
    assert RESOURCES[group]["Condition"] == condition
    fields = json.loads(setting["Format"])
    assert {"requestId", "ip", "status"} <= set(fields)


def _externally_triggered(function: str) -> bool:
    events = RESOURCES[function]["Properties"].get("Events", {})
    return any(event["Type"] in ("Api", "EventBridgeRule", "S3", "SQS") for event in events.values())


EXTERNAL_FUNCTIONS = [f for f in of_type("AWS::Serverless::Function") if _externally_triggered(f)]


def test_the_api_and_s3_drop_functions_are_the_externally_triggered_ones() -> None:
    assert EXTERNAL_FUNCTIONS == ["PredictApiFunction", "PredictS3Function"]


@pytest.mark.parametrize("function", EXTERNAL_FUNCTIONS)
def test_externally_triggered_functions_can_reserve_concurrency(function: str) -> None:
    # Off by default so a new account (reduced concurrency limit) can deploy; one parameter turns it
    # on (tests/unit/test_template_concurrency.py, docs/deploy.md "Lambda concurrency").
    condition, value, otherwise = RESOURCES[function]["Properties"]["ReservedConcurrentExecutions"]["Fn::If"]
    parameter = value["Ref"]
    prod = TemplateStack.load(samconfig_env="prod", parameters={parameter: "10"})

    assert otherwise == NO_VALUE and PARAMETERS[parameter]["Type"] == "Number"
    assert prod.condition(condition) and int(prod.parameters[parameter]) == 10


# --- network: VPC and SageMaker isolation ---------------------------------------------------------


@pytest.mark.parametrize(
    "parameter", ["EnableTrainingNetworkIsolation", "EnableInterContainerTrafficEncryption"]
)
def test_training_isolation_settings_are_parameters_passed_to_the_pipeline(parameter: str) -> None:
    # What the jobs then get is executed in tests/functional/test_pipeline_paths.py (VPC and isolation).
    substitutions = RESOURCES["TrainingPipeline"]["Properties"]["DefinitionSubstitutions"]

    assert substitutions[parameter] == {"Ref": parameter}
    assert PARAMETERS[parameter]["AllowedValues"] == ["true", "false"]


def test_prod_encrypts_traffic_between_training_instances() -> None:
    prod = TemplateStack.load(samconfig_env="prod")

    assert int(prod.parameters["FinalTrainingInstanceCount"]) > 1
    assert prod.parameters["EnableInterContainerTrafficEncryption"] == "true"


@pytest.mark.parametrize(
    ("overrides", "in_vpc"),
    [
        ({}, False),
        ({"VpcSubnetIds": "subnet-0a1b", "VpcSecurityGroupIds": "sg-0c2d"}, True),
    ],
)
def test_the_vpc_is_optional_and_off_by_default(overrides: dict[str, str], in_vpc: bool) -> None:
    stack = TemplateStack.load(parameters=overrides)

    assert stack.condition("HasVpc") is in_vpc


@pytest.mark.parametrize(
    ("overrides", "broken"),
    [
        ({}, []),
        ({"VpcSubnetIds": "subnet-0a1b", "VpcSecurityGroupIds": "sg-0c2d"}, []),
        ({"VpcSubnetIds": "subnet-0a1b"}, ["VpcSubnetsAndSecurityGroupsTogether"]),
        ({"RolloutTrafficRouting": "CANARY", "EndpointMinInstances": "2"}, []),
        (
            {"RolloutTrafficRouting": "LINEAR", "EndpointMinInstances": "1"},
            ["GuardedRolloutNeedsTwoInstances"],
        ),
        ({"RolloutTrafficRouting": "ALL_AT_ONCE", "EndpointMinInstances": "1"}, []),
        (
            {"RolloutTrafficRouting": "LINEAR", "EndpointMinInstances": "2", "RolloutStepPercent": "5"},
            ["LinearStepsWithinSageMakersRange"],
        ),
        ({"RolloutTrafficRouting": "LINEAR", "EndpointMinInstances": "2", "RolloutStepPercent": "10"}, []),
        ({"RolloutTrafficRouting": "CANARY", "EndpointMinInstances": "2", "RolloutStepPercent": "5"}, []),
        ({"EndpointType": "serverless", "RolloutTrafficRouting": "LINEAR", "EndpointMinInstances": "1"}, []),
        (
            {"EndpointType": "serverless", "VpcSubnetIds": "subnet-0a1b", "VpcSecurityGroupIds": "sg-0e4f"},
            ["ServerlessEndpointOutsideVpc"],
        ),
    ],
)
def test_cloudformation_refuses_parameter_combinations_that_cannot_work(
    overrides: dict[str, str], broken: list[str]
) -> None:
    refused = TemplateStack.load(parameters=overrides).broken_rules()

    assert [rule.split(":", 1)[0] for rule in refused] == broken


@pytest.mark.parametrize("function", of_type("AWS::Serverless::Function"))
def test_every_function_joins_the_vpc_when_given(function: str) -> None:
    # One setting in Globals covers every function; a function's own VpcConfig would override it.
    assert "VpcConfig" not in RESOURCES[function]["Properties"]
    assert TEMPLATE["Globals"]["Function"]["VpcConfig"] == {
        "Fn::If": [
            "HasVpc",
            {
                "SubnetIds": {"Fn::Split": [",", {"Ref": "VpcSubnetIds"}]},
                "SecurityGroupIds": {"Fn::Split": [",", {"Ref": "VpcSecurityGroupIds"}]},
            },
            NO_VALUE,
        ]
    }


@pytest.mark.parametrize("function", of_type("AWS::Serverless::Function"))
def test_every_function_denies_network_interfaces_outside_a_vpc(function: str) -> None:
    # SAM attaches AWSLambdaVPCAccessExecutionRole to every function once Globals set VpcConfig.
    denials = [
        policy["Fn::If"]
        for policy in RESOURCES[function]["Properties"]["Policies"]
        if isinstance(policy, dict) and "Fn::If" in policy
    ]
    [(condition, when_in_vpc, outside)] = denials
    [deny] = outside["Statement"]

    assert (condition, when_in_vpc) == ("HasVpc", NO_VALUE)
    assert deny["Effect"] == "Deny" and deny["Resource"] == "*"
    assert set(actions(deny)) == {
        "ec2:CreateNetworkInterface",
        "ec2:DeleteNetworkInterface",
        "ec2:AssignPrivateIpAddresses",
        "ec2:UnassignPrivateIpAddresses",
    }


def test_sagemaker_role_manages_network_interfaces_only_with_a_vpc() -> None:
    [policy] = RESOURCES["SageMakerExecutionRole"]["Properties"]["Policies"]
    statements = policy["PolicyDocument"]["Statement"]
    plain = [s for s in statements if "Fn::If" not in s]
    conditional = [s["Fn::If"] for s in statements if "Fn::If" in s]
    network = [c for c in conditional if any(a.startswith("ec2:") for a in actions(c[1]))]

    assert not any(a.startswith("ec2:") for s in plain for a in actions(s))
    assert network and all(c[0] == "HasVpc" and c[2] == NO_VALUE for c in network)
    assert {a for c in network for a in actions(c[1])} >= {
        "ec2:CreateNetworkInterface",
        "ec2:DeleteNetworkInterface",
    }


def test_the_capture_key_is_granted_only_when_one_is_named() -> None:
    """SageMaker encrypts captures with its role and the monitor decrypts them: only with a named key."""
    [policy] = RESOURCES["SageMakerExecutionRole"]["Properties"]["Policies"]
    monitor = [
        statement
        for entry in RESOURCES["MonitorDriftFunction"]["Properties"]["Policies"]
        if isinstance(entry, dict) and "Statement" in entry
        for statement in entry["Statement"]
    ]
    for statements in (policy["PolicyDocument"]["Statement"], monitor):
        kms = [
            s["Fn::If"] for s in statements if "Fn::If" in s and actions(s["Fn::If"][1])[0].startswith("kms:")
        ]
        assert not any(a.startswith("kms:") for s in statements if "Fn::If" not in s for a in actions(s))
        assert [(c[0], c[1]["Resource"], c[2]) for c in kms] == [
            ("HasDataCaptureKmsKey", {"Ref": "DataCaptureKmsKeyArn"}, NO_VALUE)
        ]
