"""template.yaml as the source of truth for moto: read it, resolve its parameters (defaults,
samconfig environments, overrides), intrinsic functions and the state machine's
DefinitionSubstitutions, and create the resources a local run needs (buckets, tables, queues, the
state machine) through ordinary boto3 calls (moto in-process or moto server).

    stack = TemplateStack.load(parameters={"EndpointPollSeconds": "0"})
    created = stack.deploy(session)                    # boto3 Session pointed at moto
    created.physical_names["ModelsTable"], created.state_machine_arns["TrainingPipeline"]
    stack.lambda_functions()                           # for moto_shim.register_lambda

Why not moto's CloudFormation: it does not run the SAM transform (samtranslator is not part of
moto; it lives in .venv-sam), and with the template translated by samtranslator first, moto 5.2.5's
CloudFormation still fails on the SAM-generated AWS::ApiGateway::RestApi (it requires `Name`; SAM
emits an OpenAPI `Body`). So the resources are created here, from the same template; only the
types listed in `deploy` are created.
"""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dogbreed import REPO_ROOT, TEMPLATE_PATH

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
SAMCONFIG_PATH = REPO_ROOT / "samconfig.toml"
_SUB_VARIABLE = re.compile(r"\$\{([^}!]+)\}")


# What `!Ref AWS::NoValue` resolves to (e.g. the false branch of an `!If`): the property is removed.
_NO_VALUE: Any = object()


class TemplateError(ValueError):
    """The template uses something this resolver does not understand."""


def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    """template.yaml with CloudFormation short tags in long form (`{"Ref": ...}`, `{"Fn::Sub": ...}`)."""
    from cfnlint.decode import decode_str  # type: ignore[import-untyped]  # ships with moto[cloudformation]

    template, matches = decode_str(path.read_text(encoding="utf-8"))
    if matches or template is None:
        raise TemplateError(f"cannot parse {path}: {matches}")
    return json.loads(json.dumps(template))


def samconfig_overrides(env: str = "default", path: Path = SAMCONFIG_PATH) -> dict[str, str]:
    """The `parameter_overrides` of `[<env>.deploy.parameters]` in samconfig.toml as a dict."""
    config = tomllib.loads(path.read_text(encoding="utf-8"))
    try:
        raw = config[env]["deploy"]["parameters"].get("parameter_overrides", "")
    except KeyError as exc:
        raise TemplateError(f"samconfig.toml has no [{env}.deploy.parameters]") from exc
    items = shlex.split(raw) if isinstance(raw, str) else list(raw)
    return dict(item.split("=", 1) for item in items)


def parameter_values(template: dict[str, Any], overrides: dict[str, str] | None = None) -> dict[str, str]:
    """Every template parameter's value: its Default, replaced by `overrides`."""
    values: dict[str, str] = {}
    for name, spec in template.get("Parameters", {}).items():
        if "Default" in spec:
            values[name] = str(spec["Default"])
    for name, value in (overrides or {}).items():
        if name not in template.get("Parameters", {}):
            raise TemplateError(f"unknown parameter {name}")
        values[name] = str(value)
    return values


# Physical ids: what Ref and Fn::GetAtt give for each resource type (a name or ARN per type).
def _arn(service: str, resource: str, region: str = REGION, account: str = ACCOUNT_ID) -> str:
    return f"arn:aws:{service}:{region}:{account}:{resource}"


@dataclass
class CreatedStack:
    physical_names: dict[str, str] = field(default_factory=dict)
    state_machine_arns: dict[str, str] = field(default_factory=dict)
    queue_urls: dict[str, str] = field(default_factory=dict)


@dataclass
class TemplateStack:
    template: dict[str, Any]
    parameters: dict[str, str]
    stack_name: str = "dogbreed-local"

    @classmethod
    def load(
        cls,
        *,
        parameters: dict[str, str] | None = None,
        samconfig_env: str | None = None,
        stack_name: str = "dogbreed-local",
        path: Path = TEMPLATE_PATH,
    ) -> TemplateStack:
        template = load_template(path)
        overrides = samconfig_overrides(samconfig_env) if samconfig_env else {}
        overrides.update(parameters or {})
        return cls(template, parameter_values(template, overrides), stack_name)

    # --- names ---------------------------------------------------------------------------
    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        resources: dict[str, dict[str, Any]] = self.template["Resources"]
        return resources

    def physical_name(self, logical_id: str) -> str:
        kind = self.resources[logical_id]["Type"]
        if kind == "AWS::S3::Bucket":  # lower case, <= 63 chars
            return f"{self.stack_name}-{logical_id}".lower()[:63]
        return f"{self.stack_name}-{logical_id}"[:64]

    def ref(self, logical_id: str) -> str:
        if logical_id in self.parameters:
            return self.parameters[logical_id]
        pseudo = {
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::Partition": "aws",
            "AWS::StackName": self.stack_name,
            "AWS::URLSuffix": "amazonaws.com",
        }
        if logical_id in pseudo:
            return pseudo[logical_id]
        if logical_id not in self.resources:
            raise TemplateError(f"Ref to unknown {logical_id}")
        kind = self.resources[logical_id]["Type"]
        name = self.physical_name(logical_id)
        if kind == "AWS::SQS::Queue":
            return f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT_ID}/{name}"
        if kind in ("AWS::Serverless::StateMachine", "AWS::StepFunctions::StateMachine"):
            return _arn("states", f"stateMachine:{name}")
        if kind == "AWS::SNS::Topic":
            return _arn("sns", name)
        return name

    def get_att(self, logical_id: str, attribute: str) -> str:
        kind = self.resources[logical_id]["Type"]
        name = self.physical_name(logical_id)
        arns = {
            "AWS::S3::Bucket": f"arn:aws:s3:::{name}",
            "AWS::DynamoDB::Table": _arn("dynamodb", f"table/{name}"),
            "AWS::SQS::Queue": _arn("sqs", name),
            "AWS::Serverless::Function": _arn("lambda", f"function:{name}"),
            "AWS::Lambda::Function": _arn("lambda", f"function:{name}"),
            "AWS::IAM::Role": f"arn:aws:iam::{ACCOUNT_ID}:role/{name}",
            "AWS::Logs::LogGroup": _arn("logs", f"log-group:{name}:*"),
            "AWS::Serverless::StateMachine": _arn("states", f"stateMachine:{name}"),
        }
        if attribute == "Arn" and kind in arns:
            return arns[kind]
        if attribute in ("Name", "QueueName"):
            return name
        raise TemplateError(f"Fn::GetAtt {logical_id}.{attribute} is not resolved locally")

    # --- intrinsic functions -------------------------------------------------------------
    def condition(self, name: str) -> bool:
        return bool(self.resolve(self.template.get("Conditions", {})[name]))

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            items = (self.resolve(item) for item in value)
            return [item for item in items if item is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref" and arg == "AWS::NoValue":
                return _NO_VALUE  # dropped by the enclosing list or mapping, as CloudFormation does
            if key == "Ref":
                return self.ref(arg)
            if key == "Fn::GetAtt":
                logical_id, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
                return self.get_att(logical_id, attribute)
            if key == "Fn::Sub":
                return self._sub(arg)
            if key == "Fn::If":
                chosen = arg[1] if self.condition(arg[0]) else arg[2]
                return self.resolve(chosen)
            if key == "Fn::Equals":
                left, right = (self.resolve(item) for item in arg)
                return str(left) == str(right)
            if key == "Fn::Not":
                return not self.resolve(arg[0])
            if key == "Fn::And":
                return all(self.resolve(item) for item in arg)
            if key == "Fn::Or":
                return any(self.resolve(item) for item in arg)
            if key == "Condition":
                return self.condition(arg)
            if key == "Fn::Join":
                return str(arg[0]).join(str(self.resolve(item)) for item in arg[1])
            if key.startswith("Fn::"):
                raise TemplateError(f"{key} is not resolved locally")
        resolved = {key: self.resolve(item) for key, item in value.items()}
        return {key: item for key, item in resolved.items() if item is not _NO_VALUE}

    def _sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in variables:
                return str(self.resolve(variables[name]))
            if "." in name and not name.startswith("AWS::"):
                logical_id, attribute = name.split(".", 1)
                return self.get_att(logical_id, attribute)
            return str(self.ref(name))

        return _SUB_VARIABLE.sub(replace, text)

    # --- the state machine ---------------------------------------------------------------
    def state_machine_definition(self, logical_id: str) -> str:
        """The ASL with every DefinitionSubstitution resolved; an unresolved ${...} is an error."""
        properties = self.resources[logical_id]["Properties"]
        text = (REPO_ROOT / properties["DefinitionUri"]).read_text(encoding="utf-8")
        substitutions = {
            key: str(self.resolve(value))
            for key, value in properties.get("DefinitionSubstitutions", {}).items()
        }

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in substitutions:
                raise TemplateError(f"{properties['DefinitionUri']} uses ${{{name}}} without a substitution")
            return substitutions[name]

        return _SUB_VARIABLE.sub(replace, text)

    def lambda_functions(self) -> list[dict[str, Any]]:
        """Name, CodeUri directory, handler and environment of every AWS::Serverless::Function,
        with the template's Globals applied (the shape moto_shim.LambdaFunction takes)."""
        globals_env = (
            self.template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
        )
        functions = []
        for logical_id, resource in self.resources.items():
            if resource["Type"] != "AWS::Serverless::Function":
                continue
            properties = resource["Properties"]
            environment = {**globals_env, **properties.get("Environment", {}).get("Variables", {})}
            functions.append(
                {
                    "logical_id": logical_id,
                    "name": self.physical_name(logical_id),
                    "arn": self.get_att(logical_id, "Arn"),
                    "code_dir": REPO_ROOT / properties["CodeUri"],
                    "handler": properties["Handler"],
                    "environment": {key: str(self.resolve(value)) for key, value in environment.items()},
                    "timeout_seconds": int(properties.get("Timeout", 30)),
                }
            )
        return functions

    # --- creating the resources ----------------------------------------------------------
    def deploy(
        self, session: Any, *, only: set[str] | None = None, bucket_policies: bool = False
    ) -> CreatedStack:
        """Create buckets (encryption, public access block, EventBridge notifications), tables
        (keys, GSIs, TTL), queues and state machines. `only` limits it to some logical ids.

        Bucket policies are left out unless asked for: they deny non-TLS requests, and moto
        evaluates aws:SecureTransport as false for plain-HTTP local calls."""
        created = CreatedStack()
        for logical_id, resource in self.resources.items():
            if only is not None and logical_id not in only:
                continue
            if "Condition" in resource and not self.condition(resource["Condition"]):
                continue
            kind = resource["Type"]
            properties = self.resolve(resource.get("Properties", {}))
            name = self.physical_name(logical_id)
            if kind == "AWS::S3::Bucket":
                self._create_bucket(session.client("s3", region_name=REGION), name, properties)
            elif kind == "AWS::DynamoDB::Table":
                self._create_table(session.client("dynamodb", region_name=REGION), name, properties)
            elif kind == "AWS::SQS::Queue":
                url = session.client("sqs", region_name=REGION).create_queue(QueueName=name)["QueueUrl"]
                created.queue_urls[logical_id] = url
            elif kind == "AWS::Serverless::StateMachine":
                sfn = session.client("stepfunctions", region_name=REGION)
                response = sfn.create_state_machine(
                    name=name,
                    definition=self.state_machine_definition(logical_id),
                    roleArn=f"arn:aws:iam::{ACCOUNT_ID}:role/{name}-role",
                    type=properties.get("Type", "STANDARD"),
                )
                created.state_machine_arns[logical_id] = response["stateMachineArn"]
            else:
                continue
            created.physical_names[logical_id] = name
        for logical_id, resource in self.resources.items():
            if not bucket_policies or resource["Type"] != "AWS::S3::BucketPolicy":
                continue
            if only is None or logical_id in only:
                properties = self.resolve(resource["Properties"])
                if properties["Bucket"] in created.physical_names.values():
                    session.client("s3", region_name=REGION).put_bucket_policy(
                        Bucket=properties["Bucket"], Policy=json.dumps(properties["PolicyDocument"])
                    )
        return created

    @staticmethod
    def _create_bucket(s3: Any, name: str, properties: dict[str, Any]) -> None:
        s3.create_bucket(Bucket=name)
        if "BucketEncryption" in properties:
            s3.put_bucket_encryption(
                Bucket=name,
                ServerSideEncryptionConfiguration={
                    "Rules": [  # CloudFormation's ServerSideEncryptionByDefault is the API's Apply...
                        {"ApplyServerSideEncryptionByDefault": rule["ServerSideEncryptionByDefault"]}
                        for rule in properties["BucketEncryption"]["ServerSideEncryptionConfiguration"]
                    ]
                },
            )
        if "PublicAccessBlockConfiguration" in properties:
            s3.put_public_access_block(
                Bucket=name, PublicAccessBlockConfiguration=properties["PublicAccessBlockConfiguration"]
            )
        notification = properties.get("NotificationConfiguration", {}).get("EventBridgeConfiguration")
        if notification and notification.get("EventBridgeEnabled"):
            s3.put_bucket_notification_configuration(
                Bucket=name, NotificationConfiguration={"EventBridgeConfiguration": {}}
            )

    @staticmethod
    def _create_table(dynamodb: Any, name: str, properties: dict[str, Any]) -> None:
        request: dict[str, Any] = {
            "TableName": name,
            "AttributeDefinitions": properties["AttributeDefinitions"],
            "KeySchema": properties["KeySchema"],
            "BillingMode": properties.get("BillingMode", "PAY_PER_REQUEST"),
        }
        if properties.get("GlobalSecondaryIndexes"):
            request["GlobalSecondaryIndexes"] = properties["GlobalSecondaryIndexes"]
        dynamodb.create_table(**request)
        ttl = properties.get("TimeToLiveSpecification")
        if ttl:
            dynamodb.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True},
            )
