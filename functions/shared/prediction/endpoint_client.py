"""The SageMaker real-time endpoint behind a small interface.

`SageMakerEndpointClient` calls `sagemaker-runtime:InvokeEndpoint` with explicit connect/read
timeouts, retries throttling and server errors with jittered exponential backoff within a time
budget (a retry starts only if it can end inside `ENDPOINT_BUDGET_SECONDS`), and maps every failure
to a domain error (`errors.Endpoint*Error` or, when the endpoint refused the input, the shared
`request_guards.errors.InputError` hierarchy). Tests and the benchmark hand the service a fake with
the same `classify` method.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from typing import Any, Protocol

from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)
from pydantic import ValidationError
from request_guards.errors import (
    BadRequestError,
    InputError,
    PayloadTooLargeError,
    UnsupportedMediaTypeError,
)
from request_guards.errors import ValidationError as InputValidationError

from prediction.errors import EndpointError, EndpointTimeoutError, EndpointUnavailableError
from prediction.models import EndpointResult

# Error codes of InvokeEndpoint that mean "try again shortly" (throttling, capacity, deployment in progress).
RETRYABLE_CODES = frozenset(
    {
        "ThrottlingException",
        "ModelNotReadyException",
        "ServiceUnavailable",
        "InternalFailure",
        "InternalDependencyException",
        "InternalServerError",
    }
)
# The most an invocation spends on the endpoint, retries included. API Gateway ends a REST
# integration at 29 s and the functions time out before that (template Globals Timeout: 25 s), which
# must also hold the URL fetch's deadline and a store call (tests/unit/test_request_budget.py).
ENDPOINT_BUDGET_SECONDS = 12.0
# The endpoint refused the input: its status maps onto the shared input-error classes.
_INPUT_ERROR_BY_STATUS: dict[int, type[InputError]] = {
    400: BadRequestError,
    413: PayloadTooLargeError,
    415: UnsupportedMediaTypeError,
    422: InputValidationError,
}


class EndpointClient(Protocol):
    def classify(self, image: bytes, *, content_type: str, top_k: int) -> EndpointResult:
        """Classify one image; raises EndpointError subclasses or InputError."""
        ...


def botocore_config(*, connect_timeout: float, read_timeout: float) -> Config:
    # botocore's own retries are off: the loop below owns the budget, so a timeout is never retried
    # behind our back (a slow model would otherwise hold the caller for attempts * read_timeout).
    return Config(
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        retries={"total_max_attempts": 1, "mode": "standard"},
        tcp_keepalive=True,
    )


class SageMakerEndpointClient:
    def __init__(
        self,
        runtime_client: Any,
        endpoint_name: str,
        *,
        max_attempts: int = 3,
        base_delay: float = 0.1,
        max_delay: float = 1.0,
        attempt_seconds: float = 0.0,
        budget_seconds: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`attempt_seconds`: the longest one attempt can take (the runtime client's connect + read
        timeouts); `budget_seconds`: the time all attempts and waits together may take (None: only
        `max_attempts` bounds them). A retry whose worst case would end past the budget is not made."""
        if budget_seconds is not None and attempt_seconds > budget_seconds:
            raise ValueError("one attempt's timeouts exceed the endpoint budget")
        self._client = runtime_client
        self._endpoint_name = endpoint_name
        self._max_attempts = max_attempts
        self._base_delay = base_delay
        self._max_delay = max_delay
        self._attempt_seconds = attempt_seconds
        self._budget_seconds = budget_seconds
        self._sleep = sleep
        self._clock = clock

    def worst_case_seconds(self) -> float:
        """The longest `classify` can wait on the endpoint, retries and backoff included."""
        unbounded = self._max_attempts * self._attempt_seconds + (self._max_attempts - 1) * self._max_delay
        return unbounded if self._budget_seconds is None else min(unbounded, self._budget_seconds)

    def classify(self, image: bytes, *, content_type: str, top_k: int) -> EndpointResult:
        last_error: Exception | None = None
        started = self._clock()
        for attempt in range(1, self._max_attempts + 1):
            try:
                response = self._client.invoke_endpoint(
                    EndpointName=self._endpoint_name,
                    Body=image,
                    ContentType=content_type,
                    Accept="application/json",
                    CustomAttributes=f"top_k={top_k}",
                )
                body = response["Body"].read()
            except ReadTimeoutError as error:
                # Not retried: the model may still be working on it, and a second try doubles the load.
                raise EndpointTimeoutError("the model endpoint did not answer in time") from error
            except (ConnectTimeoutError, EndpointConnectionError, ConnectionClosedError) as error:
                last_error = EndpointUnavailableError("the model endpoint could not be reached")
                last_error.__cause__ = error
            except ClientError as error:
                last_error = _map_client_error(error)
                if not _is_retryable(error):
                    raise last_error from error
            except BotoCoreError as error:
                raise EndpointError("the model endpoint call failed") from error
            else:
                return _parse_result(body, top_k)
            if attempt == self._max_attempts:
                break
            delay = self._backoff(attempt)
            if not self._retry_fits(self._clock() - started + delay):
                break
            self._sleep(delay)
        assert last_error is not None
        raise last_error

    def _retry_fits(self, starts_after: float) -> bool:
        """Whether an attempt starting `starts_after` seconds into the call ends within the budget."""
        return self._budget_seconds is None or starts_after + self._attempt_seconds <= self._budget_seconds

    def _backoff(self, attempt: int) -> float:
        # "Full jitter": spreads the retries of concurrent invocations instead of synchronising them.
        # Timing only, nothing secret: the standard PRNG is the right tool.
        return random.uniform(0, min(self._max_delay, self._base_delay * 2 ** (attempt - 1)))  # noqa: S311  # nosec B311


def _is_retryable(error: ClientError) -> bool:
    code = error.response.get("Error", {}).get("Code", "")
    status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    return code in RETRYABLE_CODES or status in (429, 500, 502, 503, 504)


def _map_client_error(error: ClientError) -> Exception:
    """Translate an InvokeEndpoint ClientError. Never copies AWS's message: it names the account and ARN."""
    err = error.response.get("Error", {})
    code = err.get("Code", "")
    if code == "ModelError":
        original_status = int(error.response.get("OriginalStatusCode", 0) or 0)
        input_error = _INPUT_ERROR_BY_STATUS.get(original_status)
        if input_error is not None:
            return _input_error_from_model(input_error, error.response.get("OriginalMessage", ""))
        return EndpointError("the model failed to process the image", code="model_error")
    if code in ("ThrottlingException", "ModelNotReadyException") or _is_retryable(error):
        return EndpointUnavailableError("the model endpoint is busy; retry shortly", retry_after_s=5)
    if code == "ValidationError":
        # Raised when the endpoint does not exist (yet): the first deployment has not finished.
        return EndpointUnavailableError("the model endpoint is not available", retry_after_s=60)
    return EndpointError("the model endpoint call failed")


def _input_error_from_model(error_class: type[InputError], original_message: str) -> InputError:
    """The endpoint re-validates inputs and answers with the shared error body; keep its code and message.
    SageMaker's serving toolkit sends the error's message and then, on the next line, its traceback
    (`Transformer.handle_error`): only the leading JSON document is read."""
    try:
        detail = json.JSONDecoder().raw_decode(original_message.lstrip())[0]["error"]
        return error_class(str(detail["message"])[:500], code=str(detail["code"])[:64])
    except (ValueError, KeyError, TypeError):
        return error_class("the model endpoint rejected the image")


def _parse_result(body: bytes, top_k: int) -> EndpointResult:
    try:
        result = EndpointResult.model_validate_json(body)
    except ValidationError as error:
        raise EndpointError(
            "the model endpoint returned an invalid response", code="bad_endpoint_response"
        ) from error
    ranked = sorted(result.predictions, key=lambda p: p.probability, reverse=True)[:top_k]
    return EndpointResult(model_version=result.model_version, predictions=ranked)
