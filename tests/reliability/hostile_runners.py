"""Send a corpus case to one entry point of the shared local cloud and read back what a client sees.

Each runner returns an `Observed`: the `Outcome` (status + code, as `hostile_corpus` declares them),
the text the client was shown (for the no-leak check) and the log lines the cloud wrote meanwhile.
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.reliability.hostile_corpus import (
    ACCEPTED,
    NOT_TRIGGERED,
    Case,
    Entry,
    ImageBytes,
    Json,
    ObjectKey,
    Outcome,
    Stream,
    TopK,
    good_image,
)
from tests.support.local_cloud import CloudWorld

HTTP_TIMEOUT = httpx.Timeout(120.0, connect=10.0)
# What must never reach a client, nor a log line, for a client error: an account id (12 digits that
# are not part of a longer token: a UUID, a number's fraction), an ARN, or a Python traceback.
LEAK_PATTERNS: dict[str, re.Pattern[str]] = {
    "account id": re.compile(r"(?<![\w.-])\d{12}(?![\w.-])"),
    "ARN": re.compile(r"\barn:"),
    "traceback": re.compile(r"Traceback \(most recent call last\)|File \"[^\"]+\", line \d+"),
}
# The emulated SageMaker runtime's own ModelError envelope names the endpoint's log stream ARN, as AWS
# does for the account that owns the endpoint; the product's part is the model server's answer inside.
AWS_ENVELOPE_FIELDS = ("message", "LogStreamArn")


def leaks(text: str) -> list[str]:
    """The names of the leak patterns `text` matches, with the first match of each."""
    return [
        f"{name}: {found.group(0)!r}"
        for name, pattern in LEAK_PATTERNS.items()
        if (found := pattern.search(text))
    ]


@dataclass
class Observed:
    outcome: Outcome
    shown: str = ""  # body and headers the client received
    logged: str = ""  # what the local cloud logged while the case ran

    def leaks(self) -> list[str]:
        return leaks(self.shown) + [f"log {item}" for item in leaks(self.logged)]


class LogWatch:
    """New text in every `*.log` under the cloud's state directory (the cloud's log, endpoint logs)."""

    def __init__(self, root: Path) -> None:
        self._root = root

    def mark(self) -> dict[Path, int]:
        return {path: path.stat().st_size for path in self._root.rglob("*.log")}

    def since(self, mark: dict[Path, int]) -> str:
        parts = []
        for path in sorted(self._root.rglob("*.log")):
            with path.open("rb") as handle:
                handle.seek(mark.get(path, 0))
                parts.append(handle.read().decode("utf-8", "replace"))
        return "".join(parts)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _json_request(payload: ImageBytes | Json | TopK) -> bytes:
    """The JSON form of a payload: the API's JSON body, the direct invoke's event."""
    if isinstance(payload, Json):
        return payload.body
    if isinstance(payload, TopK):
        return json.dumps({"image": _b64(good_image()), "top_k": payload.value}).encode()
    return json.dumps({"image": _b64(payload.data)}).encode()


def _headers_text(headers: Any) -> str:
    return "\n".join(f"{key}: {value}" for key, value in dict(headers).items())


def http_outcome(response: httpx.Response) -> Outcome:
    """Status + the product's `error.code`, or API Gateway's `message`, or a plain-text answer."""
    if response.is_success:
        return Outcome(ACCEPTED, response.status_code)
    try:
        body = response.json()
    except ValueError:
        return Outcome(response.text.strip(), response.status_code)
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return Outcome(str(body["error"].get("code")), response.status_code)
    if isinstance(body, dict):
        return Outcome(str(body.get("message") or body.get("ErrorCode")), response.status_code)
    return Outcome(response.text, response.status_code)


@dataclass
class HttpEntry:
    """One HTTP entry point: how a payload is sent, and how the answer reads."""

    entry: Entry
    send: Callable[[Any], httpx.Response]
    read: Callable[[httpx.Response], tuple[Outcome, str]]
    good: Callable[[], httpx.Response]


def _plain_read(response: httpx.Response) -> tuple[Outcome, str]:
    return http_outcome(response), response.text + "\n" + _headers_text(response.headers)


def _invocations_read(response: httpx.Response) -> tuple[Outcome, str]:
    """A ModelError (424) is the model server's answer in SageMaker's envelope: read the inside."""
    headers = _headers_text({k: v for k, v in response.headers.items() if k.lower() != "x-amzn-errortype"})
    if response.status_code == 424:
        envelope = response.json()
        inner = json.loads(envelope.get("OriginalMessage") or "{}")
        code = str(inner.get("error", {}).get("code"))
        product_part = {k: v for k, v in envelope.items() if k not in AWS_ENVELOPE_FIELDS}
        return Outcome(code, int(envelope["OriginalStatusCode"])), json.dumps(product_part) + "\n" + headers
    return http_outcome(response), response.text + "\n" + headers


def http_entries(world: CloudWorld, client: httpx.Client) -> dict[Entry, HttpEntry]:
    predictions = f"{world.api_url}/predictions"
    invocations = f"{world.state.runtime_url}/endpoints/{world.outputs['EndpointName']}/invocations"
    json_type = {"content-type": "application/json"}
    jpeg_type = {"content-type": "image/jpeg"}

    def api_json(payload: ImageBytes | Json | TopK) -> httpx.Response:
        return client.post(predictions, content=_json_request(payload), headers=json_type)

    def api_binary(payload: ImageBytes | TopK | Stream) -> httpx.Response:
        if isinstance(payload, TopK):
            return client.post(
                predictions, content=good_image(), headers=jpeg_type, params={"top_k": str(payload.value)}
            )
        body = payload.chunks() if isinstance(payload, Stream) else payload.data
        return client.post(predictions, content=body, headers=jpeg_type)

    def endpoint(payload: ImageBytes | Json | TopK | Stream) -> httpx.Response:
        if isinstance(payload, Stream):
            return client.post(invocations, content=payload.chunks(), headers=jpeg_type)
        if isinstance(payload, ImageBytes):
            return client.post(invocations, content=payload.data, headers=jpeg_type)
        if isinstance(payload, TopK):
            attributes = {"x-amzn-sagemaker-custom-attributes": f"top_k={payload.value}"}
            return client.post(invocations, content=good_image(), headers={**jpeg_type, **attributes})
        return client.post(invocations, content=payload.body, headers=json_type)

    good_json = json.dumps({"image": _b64(good_image())}).encode()
    return {
        Entry.API_JSON: HttpEntry(
            Entry.API_JSON,
            api_json,
            _plain_read,
            lambda: client.post(predictions, content=good_json, headers=json_type),
        ),
        Entry.API_BINARY: HttpEntry(
            Entry.API_BINARY,
            api_binary,
            _plain_read,
            lambda: client.post(predictions, content=good_image(), headers=jpeg_type),
        ),
        Entry.INVOCATIONS: HttpEntry(
            Entry.INVOCATIONS,
            endpoint,
            _invocations_read,
            lambda: client.post(invocations, content=good_image(), headers=jpeg_type),
        ),
    }


def good_request_top_class(response: httpx.Response) -> int | None:
    """The top class of a good request's answer (None when it was not answered)."""
    if not response.is_success:
        return None
    return int(response.json()["predictions"][0]["class_index"])


# ------------------------------------------------------------------------------------ direct invoke


class DirectInvoke:
    """`lambda:Invoke` of the API function with a legacy event, through the local cloud's Lambda API."""

    def __init__(self, world: CloudWorld) -> None:
        self._lambda = world.session.client(
            "lambda",
            endpoint_url=world.state.aws_url,
            config=Config(read_timeout=120, retries={"total_max_attempts": 1}),
        )
        self._name = world.outputs["PredictApiFunctionName"]

    def invoke(self, body: bytes) -> tuple[Outcome, str, dict[str, Any]]:
        try:
            response = self._lambda.invoke(FunctionName=self._name, Payload=body)
        except ClientError as error:
            meta = error.response.get("ResponseMetadata", {})
            code = str(error.response.get("Error", {}).get("Code"))
            shown = (
                json.dumps(error.response.get("Error", {}))
                + "\n"
                + _headers_text(meta.get("HTTPHeaders", {}))
            )
            return Outcome(code, int(meta.get("HTTPStatusCode", 0))), shown, {}
        text = response["Payload"].read().decode("utf-8", "replace")
        document = json.loads(text)
        shown = text + "\n" + _headers_text(response["ResponseMetadata"].get("HTTPHeaders", {}))
        status = int(response["StatusCode"])
        if isinstance(document, dict) and isinstance(document.get("error"), dict):
            return Outcome(str(document["error"].get("code")), status), shown, document
        if isinstance(document, dict) and "errorType" in document:
            return Outcome(str(document["errorType"]), status), shown, document
        return Outcome(ACCEPTED, status), shown, document

    def send(self, case: Case) -> tuple[Outcome, str]:
        assert isinstance(case.payload, ImageBytes | Json | TopK)
        outcome, shown, _document = self.invoke(_json_request(case.payload))
        return outcome, shown

    def good_top_class(self) -> int | None:
        outcome, _shown, document = self.invoke(json.dumps({"image": _b64(good_image())}).encode())
        if outcome.code != ACCEPTED:
            return None
        return int(document["predictions"][0]["class_index"])


# ------------------------------------------------------------------------------------------ S3 drop


def drop_key(case: Case) -> str:
    if isinstance(case.payload, ObjectKey):
        return case.payload.key
    slug = re.sub(r"[^a-z0-9]+", "-", case.name.lower()).strip("-")
    return f"incoming/hostile/{slug}.jpg"


def drop_body(case: Case) -> bytes:
    return case.payload.data if isinstance(case.payload, ImageBytes) else good_image()


@dataclass
class DropRecords:
    """Every record in the inference bucket's `results/` (S3 drops) and `rejected/`, by source key."""

    by_key: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def documents(self, key: str) -> list[dict[str, Any]]:
        """The records of one dropped key; each has its own object key under `_key`."""
        return self.by_key.get(key, [])

    def outcome(self, key: str) -> Outcome:
        records = self.documents(key)
        if not records:
            return Outcome(NOT_TRIGGERED)
        document = records[0]
        return Outcome(
            ACCEPTED if document["_key"].startswith("results/") else str(document["reason"]["code"])
        )


def read_drop_records(world: CloudWorld) -> DropRecords:
    s3 = world.client("s3")
    bucket = world.outputs["InferenceBucketName"]
    records = DropRecords()
    for prefix in ("results/", "rejected/"):
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                if item["Key"].startswith("results/api/"):
                    continue
                document = json.loads(s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read())
                source = document.get("source_key") or str(document.get("input", "")).removeprefix(
                    f"s3://{bucket}/"
                )
                records.by_key.setdefault(source, []).append(document | {"_key": item["Key"]})
    return records


def drop_all(world: CloudWorld, cases: list[Case]) -> None:
    s3 = world.client("s3")
    bucket = world.outputs["InferenceBucketName"]
    for case in cases:
        s3.put_object(Bucket=bucket, Key=drop_key(case), Body=drop_body(case))


def wait_for_records(world: CloudWorld, keys: list[str], *, timeout: float = 300.0) -> DropRecords:
    """Poll until every key in `keys` has a record (or the timeout passes; the caller asserts)."""
    deadline = time.monotonic() + timeout
    while True:
        records = read_drop_records(world)
        if all(key in records.by_key for key in keys) or time.monotonic() > deadline:
            return records
        time.sleep(1.0)
