"""SageMaker endpoint data capture: the S3 key layout and the JSON Lines records.

SageMaker writes captures under `<DestinationS3Uri>/<endpoint>/<variant>/yyyy/mm/dd/hh/<file>.jsonl`
(UTC hour of the inference), one JSON object per line ("Capture data from real-time endpoint", the
SageMaker developer guide):

    {"captureData": {"endpointInput":  {"observedContentType": "...", "mode": "INPUT",
                                        "data": "...", "encoding": "BASE64|JSON|CSV"},
                     "endpointOutput": {"observedContentType": "...", "mode": "OUTPUT",
                                        "data": "...", "encoding": "..."}},
     "eventMetadata": {"eventId": "<uuid>", "inferenceTime": "2019-11-22T08:24:40Z"},
     "eventVersion": "0"}

Content types not listed in the config's CaptureContentTypeHeader are captured BASE64 (images).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

ENCODINGS: Final = frozenset({"BASE64", "JSON", "CSV"})
EVENT_VERSION: Final = "0"


class CaptureFormatError(ValueError):
    """A line that is not a SageMaker capture record."""


@dataclass(frozen=True)
class CapturedPayload:
    content_type: str
    mode: str
    encoding: str
    data: str

    def body(self) -> bytes:
        """The request or response body as the endpoint saw it."""
        if self.encoding == "BASE64":
            try:
                return base64.b64decode(self.data, validate=True)
            except (binascii.Error, ValueError) as error:
                raise CaptureFormatError(f"{self.mode} data is not base64: {error}") from error
        return self.data.encode("utf-8")

    def as_dict(self) -> dict[str, str]:
        return {
            "observedContentType": self.content_type,
            "mode": self.mode,
            "data": self.data,
            "encoding": self.encoding,
        }


@dataclass(frozen=True)
class CaptureRecord:
    event_id: str
    inference_time: datetime
    endpoint_input: CapturedPayload | None
    endpoint_output: CapturedPayload | None
    event_version: str = EVENT_VERSION

    def to_line(self) -> str:
        capture: dict[str, Any] = {}
        if self.endpoint_input is not None:
            capture["endpointInput"] = self.endpoint_input.as_dict()
        if self.endpoint_output is not None:
            capture["endpointOutput"] = self.endpoint_output.as_dict()
        stamp = self.inference_time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        return json.dumps(
            {
                "captureData": capture,
                "eventMetadata": {"eventId": self.event_id, "inferenceTime": stamp},
                "eventVersion": self.event_version,
            },
            separators=(",", ":"),
        )


@dataclass
class CaptureFile:
    """The records of one or more capture files, and the lines that were not records."""

    records: list[CaptureRecord] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def payload(content_type: str, mode: str, body: bytes, *, as_text: bool) -> CapturedPayload:
    """A payload as SageMaker captures it: JSON/CSV content types as text, anything else base64."""
    if as_text:
        encoding = "CSV" if "csv" in content_type else "JSON"
        return CapturedPayload(content_type, mode, encoding, body.decode("utf-8", errors="replace"))
    return CapturedPayload(content_type, mode, "BASE64", base64.b64encode(body).decode("ascii"))


def _payload(raw: Any, mode: str) -> CapturedPayload:
    if not isinstance(raw, dict):
        raise CaptureFormatError(f"{mode} capture is not an object")
    encoding = raw.get("encoding")
    data = raw.get("data")
    if encoding not in ENCODINGS or not isinstance(data, str):
        raise CaptureFormatError(f"{mode} capture needs a string data and an encoding in {sorted(ENCODINGS)}")
    return CapturedPayload(
        content_type=str(raw.get("observedContentType", "")),
        mode=str(raw.get("mode", mode)),
        encoding=encoding,
        data=data,
    )


def parse_record(line: str) -> CaptureRecord:
    try:
        raw = json.loads(line)
    except json.JSONDecodeError as error:
        raise CaptureFormatError(f"not JSON: {error.msg}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("captureData"), dict):
        raise CaptureFormatError("no captureData object")
    metadata = raw.get("eventMetadata")
    if not isinstance(metadata, dict) or not isinstance(metadata.get("inferenceTime"), str):
        raise CaptureFormatError("no eventMetadata.inferenceTime")
    try:
        when = datetime.fromisoformat(metadata["inferenceTime"])
    except ValueError:
        raise CaptureFormatError(f"inferenceTime {metadata['inferenceTime']!r} is not ISO 8601") from None
    capture = raw["captureData"]
    record = CaptureRecord(
        event_id=str(metadata.get("eventId", "")),
        inference_time=when if when.tzinfo else when.replace(tzinfo=UTC),
        endpoint_input=_payload(capture["endpointInput"], "INPUT") if "endpointInput" in capture else None,
        endpoint_output=_payload(capture["endpointOutput"], "OUTPUT")
        if "endpointOutput" in capture
        else None,
        event_version=str(raw.get("eventVersion", "")),
    )
    if record.endpoint_input is None and record.endpoint_output is None:
        raise CaptureFormatError("captureData holds neither endpointInput nor endpointOutput")
    return record


def parse_lines(lines: Iterable[str], *, source: str = "capture") -> CaptureFile:
    """Every record of a capture file; a line that is not one is reported, never fatal."""
    parsed = CaptureFile()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            parsed.records.append(parse_record(line))
        except CaptureFormatError as error:
            parsed.errors.append(f"{source}:{number}: {error}")
    return parsed


def hour_prefix(destination_prefix: str, endpoint: str, variant: str, when: datetime) -> str:
    """The key prefix of one hour's captures (no leading or doubled slash)."""
    stamp = when.astimezone(UTC).strftime("%Y/%m/%d/%H")
    return "/".join(part for part in (destination_prefix.strip("/"), endpoint, variant, stamp) if part) + "/"
