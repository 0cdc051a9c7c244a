"""The load itself: `POST /predictions` at a fixed concurrency (binary JPEG and base64 JSON bodies,
alternating) and images dropped into the inference bucket by a few uploader threads."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from dogbreed.bench.load_reconcile import RequestOutcome
from dogbreed.bench.tiny_model import TINY_CLASSES, solid_color_jpeg

DROP_THREADS = 4
REQUEST_TIMEOUT_SECONDS = 120.0
BODY_KINDS = ("binary", "base64")


def request_images(count: int = 24) -> list[bytes]:
    """Good request images of every tiny class (a few seeds, so bodies differ)."""
    return [solid_color_jpeg(index % len(TINY_CLASSES), seed=index) for index in range(count)]


async def _post(client: httpx.AsyncClient, url: str, kind: str, image: bytes) -> RequestOutcome:
    if kind == "binary":
        content, content_type = image, "image/jpeg"
    else:
        content = json.dumps({"image": base64.b64encode(image).decode("ascii")}).encode()
        content_type = "application/json"
    started = time.perf_counter()
    try:
        response = await client.post(url, content=content, headers={"Content-Type": content_type})
    except httpx.HTTPError as transport_error:
        return RequestOutcome(kind, 0, time.perf_counter() - started, error=type(transport_error).__name__)
    latency = time.perf_counter() - started
    body: Any = None
    try:
        body = response.json()
    except ValueError:
        body = None
    prediction_id = body.get("prediction_id") if isinstance(body, dict) else None
    error = None
    if not 200 <= response.status_code < 300:
        error = _error_code(body) or response.text[:80]
    return RequestOutcome(
        kind,
        response.status_code,
        latency,
        retry_after=response.headers.get("retry-after"),
        prediction_id=prediction_id,
        error=error,
    )


def _error_code(body: Any) -> str | None:
    if isinstance(body, dict):
        inner = body.get("error")
        if isinstance(inner, dict) and inner.get("code"):
            return str(inner["code"])
        if body.get("message"):
            return str(body["message"])
    return None


async def send_api_load(api_url: str, requests: int, concurrency: int) -> list[RequestOutcome]:
    """`requests` POSTs with at most `concurrency` in flight, binary and base64 JSON alternating."""
    images = request_images()
    url = f"{api_url}/predictions"
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    outcomes: list[RequestOutcome] = []
    next_index = iter(range(requests))
    async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT_SECONDS, limits=limits) as client:

        async def worker() -> None:
            for index in next_index:
                kind = BODY_KINDS[index % len(BODY_KINDS)]
                outcomes.append(await _post(client, url, kind, images[index % len(images)]))

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return outcomes


def drop_images(s3: Any, bucket: str, prefix: str, count: int) -> list[str]:
    """Put `count` good images under `prefix` (a few threads, like several uploaders); their keys."""
    images = request_images()
    keys = [f"{prefix}{index:05d}.jpg" for index in range(count)]

    def put(index: int) -> None:
        s3.put_object(
            Bucket=bucket, Key=keys[index], Body=images[index % len(images)], ContentType="image/jpeg"
        )

    with ThreadPoolExecutor(DROP_THREADS, thread_name_prefix="drop") as pool:
        list(pool.map(put, range(count)))
    return keys
