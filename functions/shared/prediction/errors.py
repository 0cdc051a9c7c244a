"""Domain errors of the prediction layer. Client input errors are `request_guards.errors.InputError`
(one hierarchy shared with the endpoint); the errors here are about the endpoint and the store.

Every message is safe to return to a client: no ARNs, account ids, endpoint names or stack traces.
"""

from __future__ import annotations

from typing import ClassVar

from request_guards.errors import ServiceError


class PredictionError(ServiceError):
    # Whether an asynchronous trigger should retry the event (predict_s3 re-raises these).
    transient: ClassVar[bool] = False
    # Seconds a client should wait before retrying (the API's Retry-After header); None: no header.
    retry_after_s: int | None = None


class PredictionNotFoundError(PredictionError):
    status = 404
    default_code = "not_found"


class EndpointError(PredictionError):
    """502: the endpoint answered, but with a server error or a body that breaks the contract."""

    status = 502
    default_code = "endpoint_error"
    transient = True


class EndpointUnavailableError(EndpointError):
    """503: throttled, not deployed yet, updating, or unreachable after the retry budget."""

    status = 503
    default_code = "endpoint_unavailable"
    retry_after_s: int

    def __init__(self, message: str, *, code: str | None = None, retry_after_s: int = 5) -> None:
        super().__init__(message, code=code)
        self.retry_after_s = retry_after_s


class StoreUnavailableError(PredictionError):
    """503: the result could not be stored (S3 or DynamoDB failed or throttled); nothing was kept."""

    status = 503
    default_code = "store_unavailable"
    transient = True
    retry_after_s: int

    def __init__(self, message: str, *, code: str | None = None, retry_after_s: int = 2) -> None:
        super().__init__(message, code=code)
        self.retry_after_s = retry_after_s


class EndpointTimeoutError(EndpointError):
    """504: the endpoint did not answer within the read timeout."""

    status = 504
    default_code = "endpoint_timeout"
