"""The one error hierarchy for rejected inputs.

Every guard raises an `InputError` subclass. Callers (the SageMaker handler, the local model server,
the Lambda functions) turn it into an HTTP-ish response with `status` and the stable `code`; the
`message` is safe to show to the client (no paths, no stack traces, no internal addresses).
"""

from __future__ import annotations

from typing import Any, ClassVar


def client_text(text: str, limit: int = 64) -> str:
    """Client-supplied text (a field name) fit for a message: at most `limit` characters, and lone
    surrogates escaped, since every response goes out as UTF-8, which cannot carry them."""
    return text[:limit].encode("utf-8", "backslashreplace").decode("utf-8")


class ServiceError(Exception):
    """An error with an HTTP status, a stable `code` and a client-safe `message`: the base of
    `InputError` here and of the Lambda layer's endpoint/store errors."""

    status: ClassVar[int] = 500
    default_code: ClassVar[str] = "internal_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code

    def to_dict(self) -> dict[str, Any]:
        """The JSON error body shared by every HTTP surface: `{"error": {"code", "message"}}`."""
        return {"error": {"code": self.code, "message": self.message}}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status}, code={self.code!r}, message={self.message!r})"


class InputError(ServiceError):
    """A client error: the request cannot be served as sent."""

    status = 400
    default_code = "invalid_input"


class BadRequestError(InputError):
    """400: malformed request (bad JSON, bad base64, corrupt or truncated image, empty body)."""

    status = 400
    default_code = "bad_request"


class PayloadTooLargeError(InputError):
    """413: the body, the downloaded object or the decoded image exceeds a limit."""

    status = 413
    default_code = "payload_too_large"


class UnsupportedMediaTypeError(InputError):
    """415: a content type (or an image format) that is not accepted."""

    status = 415
    default_code = "unsupported_media_type"


class NotAcceptableError(InputError):
    """406: the Accept header asks for a representation that cannot be produced."""

    status = 406
    default_code = "not_acceptable"


class ValidationError(InputError):
    """422: well-formed but semantically invalid (top_k out of range, forbidden URL, unknown bucket)."""

    status = 422
    default_code = "validation_error"


class ForbiddenSourceError(ValidationError):
    """422: a URL or S3 location the service refuses to read (SSRF guard, bucket allow-list)."""

    default_code = "forbidden_source"


class FetchError(ValidationError):
    """422: a permitted remote source could not be read (timeout, HTTP error, too many redirects)."""

    default_code = "fetch_failed"
