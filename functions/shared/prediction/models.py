"""Request, response and stored-record models of the prediction API (one source for the OpenAPI
document, the DynamoDB item and the S3 result JSON)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

MIN_TOP_K = 1
MAX_TOP_K = 10
PREDICTION_ID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"

TopK = Annotated[int, Field(ge=MIN_TOP_K, le=MAX_TOP_K)]
Source = Literal["api", "s3"]
InputKind = Literal["url", "image", "s3_uri", "binary", "s3_event"]


class PredictionRequest(BaseModel):
    """JSON body of `POST /predictions`: exactly one of `url`, `image` (base64) or `s3_uri`."""

    model_config = ConfigDict(extra="forbid")

    url: Annotated[str | None, Field(max_length=2048, description="http(s) URL of a JPEG or PNG image.")] = (
        None
    )
    image: Annotated[str | None, Field(description="The image file, base64-encoded.")] = None
    s3_uri: Annotated[
        str | None, Field(max_length=1100, description="s3://bucket/key of an image in an allowed bucket.")
    ] = None
    top_k: Annotated[TopK | None, Field(description="Overrides the top_k query parameter.")] = None

    @model_validator(mode="after")
    def _exactly_one_source(self) -> PredictionRequest:
        given = [name for name in ("url", "image", "s3_uri") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of url, image, s3_uri")
        return self

    @property
    def kind(self) -> InputKind:
        if self.url is not None:
            return "url"
        if self.image is not None:
            return "image"
        return "s3_uri"


class Prediction(BaseModel):
    breed: str
    class_index: Annotated[int, Field(ge=0)]
    probability: Annotated[float, Field(ge=0.0, le=1.0)]


class EndpointResult(BaseModel):
    """What the SageMaker endpoint answers (the serving contract in training_job/inference.py)."""

    model_config = ConfigDict(extra="ignore")

    model_version: Annotated[str, Field(min_length=1)]
    predictions: Annotated[list[Prediction], Field(min_length=1)]


class PredictionRecord(BaseModel):
    """The stored prediction: `201` body of `POST /predictions` and body of `GET /predictions/{id}`."""

    prediction_id: Annotated[str, Field(pattern=PREDICTION_ID_PATTERN)]
    model_version: str
    predictions: list[Prediction]
    created_at: datetime
    source: Source


class HealthResponse(BaseModel):
    status: Literal["ok"] = "ok"
    service: str


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorResponse(BaseModel):
    """Every error body: `{"error": {"code", "message"}}`."""

    error: ErrorDetail


class S3ObjectRef(BaseModel):
    """An uploaded object: bucket, key and version (or ETag when unversioned) are the idempotency key."""

    model_config = ConfigDict(frozen=True)

    bucket: str
    key: str
    version_id: str | None = None
    etag: str = ""
    size: int | None = None


class S3Outcome(BaseModel):
    """What `predict_s3` did with one object."""

    status: Literal["predicted", "rejected", "ignored"]
    output_key: str | None = None
    prediction_id: str | None = None
    reason: str | None = None
