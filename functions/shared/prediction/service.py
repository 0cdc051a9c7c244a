"""The use cases: classify a request's image, fetch a stored prediction, process an uploaded object."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from botocore.exceptions import ClientError
from request_guards.errors import BadRequestError, InputError

from prediction import observability
from prediction.endpoint_client import EndpointClient
from prediction.image_source import CheckedImage, ImageSource
from prediction.models import InputKind, PredictionRecord, PredictionRequest, S3ObjectRef, S3Outcome, Source
from prediction.object_keys import is_safe_relative_path, unsafe_rejection_key
from prediction.observability import logger, tracer
from prediction.result_store import (
    ResultStore,
    api_result_key,
    is_missing_object,
    rejected_key_for,
    relative_incoming_path,
    result_key_for,
)

# Namespace of the deterministic prediction ids of uploaded objects (uuid5 of bucket/key/version).
S3_PREDICTION_NAMESPACE = uuid.UUID("6f1d3c1e-6a57-4c4b-9a0e-2f0c8f5b7d21")


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _new_id() -> str:
    return str(uuid.uuid4())


def object_prediction_id(ref: S3ObjectRef) -> str:
    """The same object version always maps to the same id, so even a replay after the idempotency
    record expired overwrites its own item instead of adding one."""
    return str(uuid.uuid5(S3_PREDICTION_NAMESPACE, f"{ref.bucket}/{ref.key}#{ref.version_id or ref.etag}"))


class PredictionService:
    def __init__(
        self,
        *,
        endpoint: EndpointClient,
        store: ResultStore,
        images: ImageSource,
        confidence: observability.ConfidenceWatch | None = None,
        clock: Callable[[], datetime] = _utcnow,
        new_id: Callable[[], str] = _new_id,
    ) -> None:
        self.endpoint = endpoint
        self.store = store
        self.images = images
        self.confidence = confidence
        self._clock = clock
        self._new_id = new_id

    @tracer.capture_method
    def predict_request(self, request: PredictionRequest, *, top_k: int) -> PredictionRecord:
        with observability.stopwatch() as elapsed:
            image = self.images.from_request(request)
            input_ref = request.url or request.s3_uri or ""
            record = self._classify_and_store(
                image, top_k=top_k, source="api", input_kind=request.kind, input_ref=input_ref
            )
        observability.record_prediction(latency_ms=elapsed[0])
        return record

    @tracer.capture_method
    def predict_binary(self, body: bytes, *, content_type: str, top_k: int) -> PredictionRecord:
        with observability.stopwatch() as elapsed:
            image = self.images.from_binary(body, content_type)
            record = self._classify_and_store(image, top_k=top_k, source="api", input_kind="binary")
        observability.record_prediction(latency_ms=elapsed[0])
        return record

    @tracer.capture_method
    def get(self, prediction_id: str) -> PredictionRecord:
        return self.store.get(prediction_id)

    @tracer.capture_method
    def process_object(self, ref: S3ObjectRef, *, top_k: int) -> S3Outcome:
        """Classify one uploaded object into `results/`, or record why it was refused in `rejected/`.

        Input problems are final (a rejection record, no retry). Endpoint and AWS failures propagate so
        the trigger retries the event and, once its budget is spent, parks it in the DLQ.
        """
        relative = relative_incoming_path(ref.key)
        if relative is None:
            logger.warning("object outside incoming/ ignored", extra={"key": ref.key})
            return S3Outcome(status="ignored", reason="outside_incoming_prefix")
        if not is_safe_relative_path(relative):
            return self._reject(
                ref,
                unsafe_rejection_key(ref.key),
                code="unsafe_key",
                message="the object key has dot or empty segments, control characters, or is too long",
                reason=BadRequestError.default_code,
            )
        with observability.stopwatch() as elapsed:
            try:
                data = self._read_object(ref)
                image = self.images.check(data)
                record = self._classify_and_store(
                    image,
                    top_k=top_k,
                    source="s3",
                    input_kind="s3_event",
                    input_ref=f"s3://{ref.bucket}/{ref.key}",
                    prediction_id=object_prediction_id(ref),
                    result_key=result_key_for(relative),
                )
            except InputError as error:
                return self._reject(
                    ref,
                    rejected_key_for(relative),
                    code=error.code,
                    message=error.message,
                    reason=error.default_code,
                )
        observability.record_prediction(latency_ms=elapsed[0])
        return S3Outcome(
            status="predicted", output_key=result_key_for(relative), prediction_id=record.prediction_id
        )

    def _read_object(self, ref: S3ObjectRef) -> bytes:
        try:
            return self.store.read_object(
                ref.bucket, ref.key, ref.version_id, max_bytes=self.images.max_image_bytes
            )
        except ClientError as error:
            if is_missing_object(error):
                # Deleted (or overwritten without versioning) before we got to it: nothing to retry.
                raise _ObjectGoneError("the object no longer exists", code="object_not_found") from error
            raise

    def _reject(self, ref: S3ObjectRef, key: str, *, code: str, message: str, reason: str) -> S3Outcome:
        self.store.save_rejection(
            rejected_key=key, source_key=ref.key, code=code, message=message, at=self._clock()
        )
        observability.record_rejection(source="s3", reason=reason)
        logger.info("object rejected", extra={"key": ref.key, "reason": code})
        return S3Outcome(status="rejected", output_key=key, reason=code)

    def _classify_and_store(
        self,
        image: CheckedImage,
        *,
        top_k: int,
        source: Source,
        input_kind: InputKind,
        input_ref: str = "",
        prediction_id: str | None = None,
        result_key: str | None = None,
    ) -> PredictionRecord:
        with observability.stopwatch() as endpoint_elapsed:
            result = self.endpoint.classify(image.data, content_type=image.content_type, top_k=top_k)
        observability.record_endpoint_latency(endpoint_elapsed[0])
        if self.confidence is not None and result.predictions:
            self.confidence.record(max(p.probability for p in result.predictions))
        prediction_id = prediction_id or self._new_id()
        record = PredictionRecord(
            prediction_id=prediction_id,
            model_version=result.model_version,
            predictions=result.predictions,
            created_at=self._clock(),
            source=source,
        )
        self.store.save(
            record,
            result_key=result_key or api_result_key(prediction_id),
            input_kind=input_kind,
            input_ref=input_ref,
        )
        return record


class _ObjectGoneError(InputError):
    status = 404
    default_code = "object_not_found"
