"""Endpoint data capture, as SageMaker does it for an endpoint config with `DataCaptureConfig`:
a sampled share of the successful invocations, input and/or output per `CaptureOptions`, JSON/CSV
content types (`CaptureContentTypeHeader`) as text and anything else base64, written as JSON Lines
under `<DestinationS3Uri>/<endpoint>/<variant>/yyyy/mm/dd/hh/` (SageMaker's layout and record format
from the product's `model_monitor.capture`, which the monitor parses).

Records are buffered and each buffer is written as one object every `interval_seconds` (and on
`close`), with the variant model's execution role, as SageMaker writes captures with it; a
`KmsKeyId` becomes SSE-KMS on the object.
"""

from __future__ import annotations

import logging
import random
import threading
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from model_monitor.capture import CaptureRecord, hour_prefix, payload

from dogbreed.local.background import Ticker
from dogbreed.local.sagemaker._aws import RoleClientFactory, parse_s3_uri
from dogbreed.local.sagemaker.endpoints import EndpointService
from dogbreed.local.sagemaker.models import ModelStore

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Target:
    bucket: str
    prefix: str
    endpoint: str
    variant: str
    hour: str
    role: str
    kms_key: str


@dataclass(frozen=True)
class Invocation:
    endpoint: str
    variant: str
    model_name: str
    request_body: bytes
    request_content_type: str
    response_body: bytes
    response_content_type: str


class CaptureWriter:
    def __init__(
        self,
        endpoints: EndpointService,
        models: ModelStore,
        role_clients: RoleClientFactory,
        *,
        interval_seconds: float = 1.0,
        draw: Any = random.random,
    ) -> None:
        self._endpoints = endpoints
        self._models = models
        self._role_clients = role_clients
        self._draw = draw
        self._lock = threading.Lock()
        self._buffers: dict[_Target, list[str]] = defaultdict(list)
        self._ticker = Ticker(self.flush, interval_seconds, name="endpoint-data-capture")

    def capture_config(self, endpoint_name: str) -> dict[str, Any] | None:
        endpoint = self._endpoints.find(endpoint_name)
        if endpoint is None:
            return None
        config = self._models.config(endpoint.config_name, "InvokeEndpoint").get("DataCaptureConfig")
        if not config or not config.get("EnableCapture", True):
            return None
        return dict(config)

    def record(self, invocation: Invocation, when: datetime | None = None) -> bool:
        """Capture one successful invocation if the config asks for it and the sample draws it."""
        config = self.capture_config(invocation.endpoint)
        if config is None or self._draw() * 100 >= float(config["InitialSamplingPercentage"]):
            return False
        modes = {option["CaptureMode"] for option in config["CaptureOptions"]}
        headers = config.get("CaptureContentTypeHeader", {})
        text_types = {*headers.get("JsonContentTypes", []), *headers.get("CsvContentTypes", [])}

        def captured(content_type: str, mode: str, body: bytes) -> Any:
            media_type = content_type.split(";")[0].strip()
            return payload(content_type, mode, body, as_text=media_type in text_types)

        when = when or datetime.now(UTC)
        record = CaptureRecord(
            event_id=str(uuid.uuid4()),
            inference_time=when,
            endpoint_input=captured(invocation.request_content_type, "INPUT", invocation.request_body)
            if "Input" in modes
            else None,
            endpoint_output=captured(invocation.response_content_type, "OUTPUT", invocation.response_body)
            if "Output" in modes
            else None,
        )
        bucket, prefix = parse_s3_uri(config["DestinationS3Uri"])
        role = str(self._models.model(invocation.model_name, "InvokeEndpoint").get("ExecutionRoleArn", ""))
        target = _Target(
            bucket=bucket,
            prefix=hour_prefix(prefix, invocation.endpoint, invocation.variant, when),
            endpoint=invocation.endpoint,
            variant=invocation.variant,
            hour=when.strftime("%Y%m%d%H"),
            role=role,
            kms_key=str(config.get("KmsKeyId", "")),
        )
        with self._lock:
            self._buffers[target].append(record.to_line())
        return True

    def flush(self) -> int:
        """Write every buffer as one object; returns the number of objects written."""
        with self._lock:
            buffers, self._buffers = self._buffers, defaultdict(list)
        written = 0
        for target, lines in buffers.items():
            now = datetime.now(UTC)
            key = f"{target.prefix}{now.strftime('%M-%S-%f')[:-3]}-{uuid.uuid4().hex[:8]}.jsonl"
            extra = (
                {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": target.kms_key} if target.kms_key else {}
            )
            try:
                self._role_clients(target.role)("s3").put_object(
                    Bucket=target.bucket, Key=key, Body=("\n".join(lines) + "\n").encode(), **extra
                )
                written += 1
            except Exception as error:  # a lost capture never fails an invocation
                logger.warning("data capture to s3://%s/%s not written: %s", target.bucket, key, error)
        return written

    def close(self) -> None:
        self._ticker.stop()
        self.flush()
