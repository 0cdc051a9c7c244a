"""How Step Functions names the errors of a Task's integration, and which request each Task sends.

Sources (AWS documentation, "Handling errors in Step Functions workflows", "Learning to use AWS
service SDK integrations in Step Functions" and the optimized integration pages for SageMaker,
Lambda, DynamoDB and SNS), applied to botocore's service models:

- AWS SDK integrations (`arn:aws:states:::aws-sdk:<service>:<action>`): `<Service>.<Error>`, the
  service in the AWS SDK's PascalCase spelling and the error with an `Exception` suffix always
  (`SageMaker.ResourceNotFoundException`). An error the service does not model surfaces as the SDK's
  base exception of the service, `<Service>.<Service>Exception` (`SageMaker.SageMakerException`:
  DescribeEndpoint's "Could not find endpoint" is an unmodelled ValidationException).
- Optimized integrations (`arn:aws:states:::sagemaker:createTrainingJob.sync`, `dynamodb:putItem`,
  ...): the modelled errors the same way (`DynamoDB.ConditionalCheckFailedException`), anything else
  under the service's classic SDK base exception (`SageMaker.AmazonSageMakerException`,
  `DynamoDB.AmazonDynamoDBException`). A `.sync` job that ends Failed or Stopped fails the task with
  `States.TaskFailed`.
- Lambda (`lambda:invoke`): the documented transient service errors (`Lambda.ServiceException`,
  `Lambda.AWSLambdaException`, `Lambda.SdkClientException`, `Lambda.TooManyRequestsException`),
  `Lambda.Unknown`, the Invoke API's modelled errors, and a function error under the function's own
  error type.
- `.waitForTaskToken`: whatever error the answering SendTaskFailure names (the project's own names).

The local cloud raises task errors through `error_name` and the contract checks derive the names a
Retry/Catch may use from `raisable_error_names`: one rule for both.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Final

from dogbreed.aws import service_models

STATES_ERRORS: Final = frozenset(
    {
        "States.ALL",
        "States.BranchFailed",
        "States.DataLimitExceeded",
        "States.ExceedToleratedFailureThreshold",
        "States.HeartbeatTimeout",
        "States.Http.Socket",
        "States.IntrinsicFailure",
        "States.ItemReaderFailed",
        "States.NoChoiceMatched",
        "States.ParameterPathFailure",
        "States.Permissions",
        "States.QueryEvaluationError",
        "States.ResultPathMatchFailure",
        "States.ResultWriterFailed",
        "States.Runtime",
        "States.TaskFailed",
        "States.Timeout",
    }
)

# The functions a JSONata expression may call ("Transforming data with JSONata in Step Functions"):
# the JSONata 2.0.6 function library except `$eval` ("`$eval` is not available, use `$parse`
# instead"), and Step Functions' own `$partition`, `$range`, `$hash`, `$random` (seeded), `$uuid`
# and `$parse`.
JSONATA_FUNCTIONS: Final = frozenset(
    {
        # string
        "string", "length", "substring", "substringBefore", "substringAfter", "uppercase",
        "lowercase", "trim", "pad", "contains", "split", "join", "match", "replace",
        "base64encode", "base64decode", "encodeUrlComponent", "encodeUrl", "decodeUrlComponent",
        "decodeUrl",
        # numeric
        "number", "abs", "floor", "ceil", "round", "power", "sqrt", "random", "formatNumber",
        "formatBase", "formatInteger", "parseInteger",
        # aggregation, boolean, array
        "sum", "max", "min", "average", "boolean", "not", "exists", "count", "append", "sort",
        "reverse", "shuffle", "distinct", "zip",
        # object, date and time, higher-order
        "keys", "lookup", "spread", "merge", "sift", "each", "error", "assert", "type", "now",
        "millis", "fromMillis", "toMillis", "map", "filter", "single", "reduce",
        # Step Functions' own
        "partition", "range", "hash", "uuid", "parse",
    }
)  # fmt: skip

# AWS SDK integration service names (the SDK's module names in the resource ARN): boto3's client name
# and the PascalCase prefix of their error names.
_SDK_SERVICES: Final[dict[str, tuple[str, str]]] = {
    "applicationautoscaling": ("application-autoscaling", "ApplicationAutoScaling"),
    "cloudwatch": ("cloudwatch", "CloudWatch"),
    "dynamodb": ("dynamodb", "DynamoDb"),
    "lambda": ("lambda", "Lambda"),
    "s3": ("s3", "S3"),
    "sagemaker": ("sagemaker", "SageMaker"),
    "sfn": ("stepfunctions", "Sfn"),
    "sns": ("sns", "Sns"),
    "sqs": ("sqs", "Sqs"),
}

# Optimized integrations: boto3's client name, the error prefix and the classic SDK base exception.
_OPTIMIZED_SERVICES: Final[dict[str, tuple[str, str, str]]] = {
    "sagemaker": ("sagemaker", "SageMaker", "AmazonSageMakerException"),
    "dynamodb": ("dynamodb", "DynamoDB", "AmazonDynamoDBException"),
    "lambda": ("lambda", "Lambda", "AWSLambdaException"),
    "sns": ("sns", "SNS", "AmazonSNSException"),
    "sqs": ("sqs", "SQS", "AmazonSQSException"),
}
# Lambda's documented service errors besides the modelled ones (the Lambda integration page).
LAMBDA_DOCUMENTED_ERRORS: Final = frozenset(
    {
        "Lambda.ServiceException",
        "Lambda.AWSLambdaException",
        "Lambda.SdkClientException",
        "Lambda.TooManyRequestsException",
        "Lambda.ClientExecutionTimeoutException",
        "Lambda.Unknown",
    }
)
# Optimized actions whose botocore operation is not just the PascalCase action.
_OPTIMIZED_OPERATIONS: Final[dict[tuple[str, str], str]] = {("lambda", "invoke"): "Invoke"}
_SYNC_JOB_ACTIONS: Final = frozenset(
    {"createTrainingJob", "createHyperParameterTuningJob", "createTransformJob"}
)

_RESOURCE = re.compile(
    r"^arn:(?P<partition>[^:]+):states:::(?:(?P<sdk>aws-sdk):)?(?P<service>[a-z0-9]+):"
    r"(?P<action>[A-Za-z0-9]+)(?:\.(?P<pattern>sync|waitForTaskToken))?(?::2)?$"
)


class UnknownIntegration(ValueError):
    """A Task resource this module does not know how to name errors for."""


@dataclass(frozen=True)
class Integration:
    """One Task resource: `kind` is "sdk" or "optimized"; `service` the name in the ARN."""

    kind: str
    service: str
    action: str
    pattern: str | None

    @property
    def boto_service(self) -> str:
        table = _SDK_SERVICES if self.kind == "sdk" else _OPTIMIZED_SERVICES
        if self.service not in table:
            raise UnknownIntegration(f"{self.kind} integration {self.service} is not described here")
        return table[self.service][0]

    @property
    def operation(self) -> str:
        """botocore's operation name for the request this Task sends."""
        return _OPTIMIZED_OPERATIONS.get((self.service, self.action), service_models.pascal_case(self.action))

    @property
    def error_prefix(self) -> str:
        table = _SDK_SERVICES if self.kind == "sdk" else _OPTIMIZED_SERVICES
        return table[self.service][1]

    @property
    def base_exception(self) -> str:
        """The name an error gets when the service does not model it."""
        if self.kind == "sdk":
            return f"{self.error_prefix}.{self.error_prefix}Exception"
        return f"{self.error_prefix}.{_OPTIMIZED_SERVICES[self.service][2]}"


def parse_resource(resource: str) -> Integration:
    """`arn:aws:states:::aws-sdk:sagemaker:listEndpoints` -> Integration("sdk", "sagemaker", ...)."""
    match = _RESOURCE.match(resource)
    if match is None:
        raise UnknownIntegration(f"{resource} is not a Step Functions service integration ARN")
    kind = "sdk" if match["sdk"] else "optimized"
    integration = Integration(kind, match["service"], match["action"], match["pattern"])
    integration.boto_service  # noqa: B018 - raises UnknownIntegration for services not described here
    return integration


def _with_exception_suffix(code: str) -> str:
    return code if code.endswith("Exception") else f"{code}Exception"


def error_name(integration: Integration, code: str) -> str:
    """The error name Step Functions gives a service error with this code on this integration."""
    if code in service_models.service_error_codes(integration.boto_service):
        return f"{integration.error_prefix}.{_with_exception_suffix(code)}"
    return integration.base_exception


def raisable_error_names(integration: Integration) -> frozenset[str]:
    """Every service error name this Task can raise (States.* and custom task-token errors aside)."""
    codes = service_models.operation_error_codes(integration.boto_service, integration.operation)
    names = {f"{integration.error_prefix}.{_with_exception_suffix(code)}" for code in codes}
    names.add(integration.base_exception)
    if integration.service == "lambda" and integration.kind == "optimized":
        names |= LAMBDA_DOCUMENTED_ERRORS
    if integration.pattern == "sync" and integration.action in _SYNC_JOB_ACTIONS:
        names.add("States.TaskFailed")
    return frozenset(names)


def _to_member_case(value: Any, shape: Any) -> Any:
    """Step Functions spells request members in PascalCase even where the API's model uses camelCase
    (the SDK integrations page); map each key onto the model's spelling."""
    if isinstance(value, dict) and getattr(shape, "type_name", None) == "structure":
        members = {name.lower(): name for name in shape.members}
        result = {}
        for key, item in value.items():
            member = members.get(key.lower(), key)
            result[member] = _to_member_case(item, shape.members.get(member))
        return result
    if isinstance(value, list) and getattr(shape, "type_name", None) == "list":
        return [_to_member_case(item, shape.member) for item in value]
    if getattr(shape, "type_name", None) == "blob" and not isinstance(value, bytes | str):
        # lambda:invoke's Payload (and other blobs) may be JSON in the state; it is sent serialized.
        return json.dumps(value).encode("utf-8")
    return value


def task_request_problems(resource: str, parameters: dict[str, Any]) -> str | None:
    """botocore's validation report for the request a Task sends, or None when it is valid."""
    integration = parse_resource(resource)
    shape = service_models.operation_model(integration.boto_service, integration.operation).input_shape
    return service_models.request_problems(
        integration.boto_service, integration.operation, _to_member_case(parameters, shape)
    )
