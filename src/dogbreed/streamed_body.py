"""Read an HTTP request body as a stream with a byte limit: the one rule behind the model server's,
the local SageMaker runtime's and the local HTTP API's payload limits. Nothing past the limit is
buffered, so a 100 MB upload costs at most `limit + one chunk` of memory.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response


class BodyTooLargeError(Exception):
    pass


async def read_limited_body(request: Request, limit: int) -> bytes:
    """The body; raises BodyTooLargeError when Content-Length or the bytes streamed pass `limit`."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise BodyTooLargeError
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLargeError
        chunks.append(chunk)
    return b"".join(chunks)


def content_length_exceeded(limit: int) -> Response:
    """How API Gateway and SageMaker's runtime front door refuse an oversized body (413, plain text)."""
    return PlainTextResponse(f"HTTP content length exceeded {limit} bytes.", status_code=413)
