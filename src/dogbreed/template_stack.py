"""template.yaml read as CloudFormation would: its parameters (defaults, samconfig environments,
overrides), conditions, intrinsic functions (Ref, Fn::GetAtt, Fn::Sub, Fn::Join, Fn::If, ...) and the
state machine's DefinitionSubstitutions, resolved for one stack (its name, account and region).

    stack = TemplateStack.load(parameters={"Stage": "prod"}, stack_name="dogbreed-prod")
    stack.physical_name("DataBucket"), stack.resolve({"Fn::Sub": "..."})
    stack.state_machine_definition("TrainingPipeline")
    stack.lambda_functions()

The operator commands (preflight, cost, teardown), the IAM proof and the local cloud read the
template through this one resolver; the local cloud creates resources from it
(dogbreed.local.template_resources).
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dogbreed import REPO_ROOT, TEMPLATE_PATH
from dogbreed.stack_target import samconfig_overrides

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
_SUB_VARIABLE = re.compile(r"\$\{([^}!]+)\}")


# What `!Ref AWS::NoValue` resolves to (e.g. the false branch of an `!If`): the property is removed.
_NO_VALUE: Any = object()


class TemplateError(ValueError):
    """The template uses something this resolver does not understand."""


def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    """template.yaml with CloudFormation short tags in long form (`{"Ref": ...}`, `{"Fn::Sub": ...}`);
    a new copy each call."""
    loaded: dict[str, Any] = json.loads(_decoded(path.read_text(encoding="utf-8"), str(path)))
    return loaded


@functools.lru_cache(maxsize=4)
def _decoded(text: str, name: str) -> str:
    """The template's text decoded once per process (the YAML decode is the slow part), as JSON."""
    from cfnlint.decode import decode_str  # type: ignore[import-untyped]  # ships with moto[cloudformation]

    template, matches = decode_str(text)
    if matches or template is None:
        raise TemplateError(f"cannot parse {name}: {matches}")
    return json.dumps(template)


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


# The local stack's id: CloudFormation's shape, arn:...:stack/<name>/<uuid> (its first 8 hex digits
# name the pipeline's jobs and models).
LOCAL_STACK_UUID = "0c10ca1d-5eed-4d06-9b1e-d06b4eed0001"


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
            "AWS::StackId": _arn("cloudformation", f"stack/{self.stack_name}/{LOCAL_STACK_UUID}"),
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
            "AWS::KMS::Key": _arn("kms", f"key/{name}"),
        }
        if attribute == "Arn" and kind in arns:
            return arns[kind]
        if kind == "AWS::SageMaker::ModelPackageGroup" and attribute == "ModelPackageGroupArn":
            group = self.resolve(self.resources[logical_id]["Properties"]["ModelPackageGroupName"])
            return _arn("sagemaker", f"model-package-group/{group.lower()}")
        if attribute in ("Name", "QueueName"):
            return name
        raise TemplateError(f"Fn::GetAtt {logical_id}.{attribute} is not resolved locally")

    # --- intrinsic functions -------------------------------------------------------------
    def condition(self, name: str) -> bool:
        return bool(self.resolve(self.template.get("Conditions", {})[name]))

    def broken_rules(self) -> list[str]:
        """What CloudFormation's template Rules would refuse for these parameters: the
        AssertDescription of every assertion that fails in a rule whose RuleCondition holds (a
        deployment with a broken rule is refused before any resource changes)."""
        broken = []
        for name, rule in self.template.get("Rules", {}).items():
            if "RuleCondition" in rule and not self.resolve(rule["RuleCondition"]):
                continue
            for assertion in rule.get("Assertions", []):
                if not self.resolve(assertion["Assert"]):
                    broken.append(f"{name}: {assertion.get('AssertDescription', 'assertion failed')}")
        return broken

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
            if key == "Fn::Contains":  # a rule function: is the value one of the list's strings
                values, wanted = self.resolve(arg[0]), self.resolve(arg[1])
                return str(wanted) in [str(value) for value in values]
            if key == "Condition":
                return self.condition(arg)
            if key == "Fn::Join":
                return str(arg[0]).join(str(self.resolve(item)) for item in arg[1])
            if key == "Fn::Split":
                return str(self.resolve(arg[1])).split(str(arg[0]))
            if key == "Fn::Select":
                return self.resolve(arg[1])[int(self.resolve(arg[0]))]
            if key == "Fn::FindInMap":
                return self._find_in_map(*(str(self.resolve(item)) for item in arg))
            if key.startswith("Fn::"):
                raise TemplateError(f"{key} is not resolved locally")
        resolved = {key: self.resolve(item) for key, item in value.items()}
        return {key: item for key, item in resolved.items() if item is not _NO_VALUE}

    def _find_in_map(self, name: str, top_key: str, second_key: str) -> Any:
        try:
            return self.template["Mappings"][name][top_key][second_key]
        except KeyError as exc:  # CloudFormation fails the stack the same way
            raise TemplateError(f"Fn::FindInMap: no {name}.{top_key}.{second_key} in Mappings") from exc

    def _sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in variables:
                return str(self.resolve(variables[name]))
            if "." in name and not name.startswith("AWS::") and name not in self.parameters:
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
        """Name, CodeUri directory, handler, environment, timeout, memory and runtime of every
        AWS::Serverless::Function, with the template's Globals applied (what the local Lambda
        runtime's FunctionSpec takes; Lambda's defaults where both are silent)."""
        function_globals = self.template.get("Globals", {}).get("Function", {})
        globals_env = function_globals.get("Environment", {}).get("Variables", {})
        functions = []
        for logical_id, resource in self.resources.items():
            if resource["Type"] != "AWS::Serverless::Function":
                continue
            own = resource["Properties"]
            properties = {**function_globals, **own}
            environment = {**globals_env, **own.get("Environment", {}).get("Variables", {})}
            functions.append(
                {
                    "logical_id": logical_id,
                    "name": self.physical_name(logical_id),
                    "arn": self.get_att(logical_id, "Arn"),
                    "code_dir": REPO_ROOT / properties["CodeUri"],
                    "handler": properties["Handler"],
                    # SAM merges lists additively: the Globals' layers, then the function's own.
                    "layer_dirs": tuple(
                        self.layer_dir(layer)
                        for layer in [*function_globals.get("Layers", []), *properties.get("Layers", [])]
                    ),
                    "environment": {key: str(self.resolve(value)) for key, value in environment.items()},
                    "timeout_seconds": int(self.resolve(properties.get("Timeout", 3))),
                    "memory_mb": int(self.resolve(properties.get("MemorySize", 128))),
                    "runtime": str(self.resolve(properties.get("Runtime", "python3.12"))),
                }
            )
        return functions

    def layer_dir(self, layer: Any) -> Path:
        """The directory a function's layer entry (`!Ref` to an AWS::Serverless::LayerVersion) holds."""
        logical_id = layer.get("Ref") if isinstance(layer, dict) else None
        resource = self.resources.get(str(logical_id), {})
        if resource.get("Type") != "AWS::Serverless::LayerVersion":
            raise TemplateError(f"layer {layer} is not an AWS::Serverless::LayerVersion of this template")
        return REPO_ROOT / resource["Properties"]["ContentUri"]
