"""What Lambda answers when an invocation cannot run or does not finish: the service's own errors
(botocore's Lambda model names them) and the error payloads of a function that failed outside its
code (timeouts, crashed runtimes, oversized responses)."""

from __future__ import annotations

import json
import uuid
from typing import Any, Final

from botocore.exceptions import ClientError

# Lambda's synchronous invocation payload quotas (6 MB in the quotas table): the request, 6,291,456
# bytes; the response, 6,291,556 bytes as the service reports it.
SYNC_REQUEST_LIMIT: Final = 6 * 1024 * 1024
SYNC_RESPONSE_LIMIT: Final = 6_291_556


class LambdaServiceError(Exception):
    """An error of the Lambda service itself (no function error): an HTTP status, botocore's error
    code and the modelled body fields."""

    status: int = 500
    code: str = "ServiceException"

    def __init__(self, message: str, **fields: str) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields

    def body(self) -> dict[str, str]:
        return {**self.fields, "message": self.message}

    def client_error(self, operation: str = "Invoke") -> ClientError:
        """As boto3 raises it (what Step Functions turns into `Lambda.<code>`)."""
        return ClientError(
            {
                "Error": {"Code": self.code, "Message": self.message},
                "ResponseMetadata": {"HTTPStatusCode": self.status, "RequestId": str(uuid.uuid4())},
                **self.fields,
            },
            operation,
        )


class TooManyRequestsError(LambdaServiceError):
    """No concurrency left for a synchronous invocation (a throttle, counted in `Throttles`)."""

    status = 429
    code = "TooManyRequestsException"

    def __init__(self, reason: str) -> None:
        super().__init__("Rate Exceeded.", Reason=reason, Type="User")


class FunctionNotFoundError(LambdaServiceError):
    status = 404
    code = "ResourceNotFoundException"

    def __init__(self, name: str) -> None:
        super().__init__(f"Function not found: {name}", Type="User")


def timeout_payload(request_id: str, timeout_seconds: float) -> dict[str, Any]:
    return {
        "errorType": "Sandbox.Timedout",
        "errorMessage": f"RequestId: {request_id} Error: Task timed out after {timeout_seconds:.2f} seconds",
    }


def exit_payload(request_id: str, returncode: int | None) -> dict[str, Any]:
    """The runtime process ended during the invocation (os._exit, a signal, a crash)."""
    if returncode is not None and returncode < 0:
        detail = f"signal: {-returncode}"
    else:
        detail = f"exit status {returncode}"
    return {
        "errorType": "Runtime.ExitError",
        "errorMessage": f"RequestId: {request_id} Error: Runtime exited with error: {detail}",
    }


def response_too_large_payload() -> dict[str, Any]:
    return {
        "errorType": "Function.ResponseSizeTooLarge",
        "errorMessage": "Response payload size exceeded maximum allowed payload size "
        f"({SYNC_RESPONSE_LIMIT} bytes).",
    }


def encode(document: Any) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode("utf-8")
