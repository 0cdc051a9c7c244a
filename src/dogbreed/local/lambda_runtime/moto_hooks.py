"""moto's Lambda entry points answered by the local runtime (`use_runtime`), for the functions it has
(moto runs Lambda only in Docker; other functions still go to moto):

- the `Invoke` API (`boto3.client("lambda").invoke`, `aws lambda invoke`): RequestResponse,
  Event (202, queued) and DryRun (204). Lambda's synchronous request limit (over 6,291,456 bytes:
  413 RequestEntityTooLargeException) and its answer to a body that is not JSON (400
  InvalidRequestContentException) are checked here, before moto reads the body for its own parameters
  (a document nested too deeply for Python's parser would make that a 500). A throttle is 429
  TooManyRequestsException with its Reason; a function error is 200 with X-Amz-Function-Error;
- Step Functions' `arn:aws:states:::lambda:invoke` (`LambdaTaskService`, plugged in by
  `dogbreed.local.moto_shim`): a function error fails the task with the payload's errorType, a
  throttle with `Lambda.TooManyRequestsException`, as Step Functions names them.

Pinned with moto (`dogbreed.local.moto_shim.MOTO_VERSION`); `check_moto_internals` names what it
relies on.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from typing import Any, Final
from urllib.parse import parse_qs, unquote

from moto.awslambda.responses import LambdaResponse
from moto.core.exceptions import JsonRESTError
from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import state_task_service_lambda

from dogbreed.local.lambda_runtime.errors import SYNC_REQUEST_LIMIT, LambdaServiceError
from dogbreed.local.lambda_runtime.runtime import LambdaRuntime

_RUNTIME: LambdaRuntime | None = None


def use_runtime(runtime: LambdaRuntime | None) -> None:
    """The runtime whose functions moto's Lambda entry points run (None: only moto's own)."""
    global _RUNTIME
    _RUNTIME = runtime


def _runtime_for(function_name: str) -> LambdaRuntime | None:
    runtime = _RUNTIME
    return runtime if runtime is not None and runtime.function(function_name) is not None else None


class RequestEntityTooLargeError(JsonRESTError):
    code = 413

    def __init__(self) -> None:
        super().__init__(
            "RequestEntityTooLargeException",
            f"Request must be smaller than {SYNC_REQUEST_LIMIT} bytes for the InvokeFunction operation",
        )


class InvalidRequestContentError(JsonRESTError):
    code = 400

    def __init__(self) -> None:
        super().__init__("InvalidRequestContentException", "Could not parse request body into json")


_ORIGINAL_LAMBDA_INVOKE: Final = LambdaResponse.invoke


def _lambda_invoke(self: Any) -> tuple[int, dict[str, str], bytes]:
    # moto takes the status from the "status" header when it answers through mock_aws.
    function_name = unquote(self.path.rsplit("/", 2)[-2])
    runtime = _runtime_for(function_name)
    if runtime is None:
        from_moto: tuple[int, dict[str, str], bytes] = _ORIGINAL_LAMBDA_INVOKE(self)
        return from_moto
    body = self.body
    raw = body.encode("utf-8") if isinstance(body, str) else bytes(body or b"")
    if len(raw) > SYNC_REQUEST_LIMIT:
        raise RequestEntityTooLargeError()
    try:
        json.loads(raw or b"{}")
    except ValueError:
        raise InvalidRequestContentError() from None
    except RecursionError:
        pass  # valid JSON the Python runtime cannot load: the worker reports Runtime.UnmarshalError
    # From the URL only: moto fills its querystring from the body or headers when the URL has none.
    qualifier = (parse_qs(self.parsed_url.query).get("Qualifier") or [None])[0]
    invocation_type = self.headers.get("X-Amz-Invocation-Type") or "RequestResponse"
    try:
        if invocation_type == "Event":
            request_id = runtime.invoke_async(function_name, raw or b"{}", qualifier=qualifier)
            return 202, {"status": "202", "x-amzn-RequestId": request_id}, b""
        if invocation_type == "DryRun":
            return 204, {"status": "204"}, b""
        result = runtime.invoke(function_name, raw or b"{}", qualifier=qualifier)
    except LambdaServiceError as error:
        headers = {
            "status": str(error.status),
            "x-amzn-ErrorType": error.code,
            "content-type": "application/json",
        }
        return error.status, headers, json.dumps(error.body()).encode("utf-8")
    headers = {
        "content-type": "application/json",
        "x-amzn-RequestId": result.request_id,
        "X-Amz-Executed-Version": result.executed_version,
    }
    if result.function_error:
        headers["X-Amz-Function-Error"] = result.function_error
    return 200, headers, result.payload


class LambdaTaskService(state_task_service_lambda.StateTaskServiceLambda):
    """`lambda:invoke` of a function the runtime has runs there; others go to moto."""

    def _eval_service_task(
        self,
        env: Any,
        resource_runtime_part: Any,
        normalised_parameters: dict[str, Any],
        state_credentials: Any,
    ) -> None:
        function_name = str(normalised_parameters.get("FunctionName", ""))
        runtime = _runtime_for(function_name)
        if runtime is None:
            super()._eval_service_task(env, resource_runtime_part, normalised_parameters, state_credentials)
            return
        raw = normalised_parameters.get("Payload")  # bytes: moto casts the state's Payload first
        payload = raw if isinstance(raw, bytes) else json.dumps(raw if raw is not None else {}).encode()
        try:
            result = runtime.invoke(function_name, payload, qualifier=normalised_parameters.get("Qualifier"))
        except LambdaServiceError as error:
            raise error.client_error() from None
        document = result.document()
        if result.function_error:
            raise lambda_eval_utils.LambdaFunctionErrorException(
                result.function_error, json.dumps(document, separators=(",", ":"))
            )
        env.stack.append({"StatusCode": 200, "Payload": document, "ExecutedVersion": result.executed_version})


def _parameters(function: Callable[..., Any]) -> list[str]:
    return list(inspect.signature(function).parameters)


def check_moto_internals() -> list[str]:
    """The moto internals these hooks rely on; returns the mismatches."""
    problems: list[str] = []
    task_args = ["self", "env", "resource_runtime_part", "normalised_parameters", "state_credentials"]
    if _parameters(state_task_service_lambda.StateTaskServiceLambda._eval_service_task) != task_args:
        problems.append(f"StateTaskServiceLambda._eval_service_task{task_args[1:]} changed")
    if not hasattr(state_task_service_lambda.StateTaskServiceLambda, "_normalise_parameters"):
        problems.append("StateTaskServiceLambda._normalise_parameters (the Payload cast) is gone")
    error_init = lambda_eval_utils.LambdaFunctionErrorException.__init__
    if _parameters(error_init)[1:] != ["function_error", "payload"]:
        problems.append("lambda_eval_utils.LambdaFunctionErrorException(function_error, payload) changed")
    if LambdaResponse.invoke not in (_ORIGINAL_LAMBDA_INVOKE, _lambda_invoke) or _parameters(
        _ORIGINAL_LAMBDA_INVOKE
    ) != ["self"]:
        problems.append("LambdaResponse.invoke(self) changed")
    return problems


def install() -> None:
    LambdaResponse.invoke = _lambda_invoke  # type: ignore[method-assign]


def uninstall() -> None:
    LambdaResponse.invoke = _ORIGINAL_LAMBDA_INVOKE  # type: ignore[method-assign]
    use_runtime(None)
