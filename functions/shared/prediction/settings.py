"""Function configuration, parsed from environment variables once per container (cold start).

A missing or malformed variable fails the init with a message that names it, instead of failing the
first request.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import lru_cache
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

MIB = 1024 * 1024

# Environment variable -> settings field. The template's function entries set exactly these.
ENV_VARS: dict[str, str] = {
    "ENDPOINT_NAME": "endpoint_name",
    "RESULTS_BUCKET": "results_bucket",
    "PREDICTIONS_TABLE": "predictions_table",
    "IDEMPOTENCY_TABLE": "idempotency_table",
    "ALLOWED_S3_BUCKETS": "allowed_s3_buckets",
    "PREDICTION_TTL_DAYS": "prediction_ttl_days",
    "CORS_ALLOW_ORIGIN": "cors_allow_origin",
    "MAX_IMAGE_BYTES": "max_image_bytes",
    "ENDPOINT_CONNECT_TIMEOUT": "endpoint_connect_timeout",
    "ENDPOINT_READ_TIMEOUT": "endpoint_read_timeout",
    "ENDPOINT_MAX_ATTEMPTS": "endpoint_max_attempts",
    "URL_FETCH_TIMEOUT": "url_fetch_timeout",
    "DEFAULT_TOP_K": "default_top_k",
    "LOW_CONFIDENCE_PROBABILITY": "low_confidence_probability",
}


class SettingsError(RuntimeError):
    """The function's environment is incomplete or invalid (raised at cold start)."""


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    endpoint_name: Annotated[
        str, Field(min_length=1, max_length=63, pattern=r"^[a-zA-Z0-9](-*[a-zA-Z0-9])*$")
    ]
    results_bucket: Annotated[str, Field(min_length=3, max_length=63)]
    predictions_table: Annotated[str, Field(min_length=3, max_length=255)]
    idempotency_table: Annotated[str, Field(min_length=3, max_length=255)]
    # Buckets a caller may name in `s3_uri`; the functions' IAM policies grant read on the same set.
    allowed_s3_buckets: tuple[str, ...] = ()
    prediction_ttl_days: Annotated[int, Field(ge=1, le=3650)] = 30
    cors_allow_origin: Annotated[str, Field(min_length=1)] = "*"
    # The proxy event is capped at 6 MiB and base64 adds a third: 4 MiB of image fits (template MaxValue).
    max_image_bytes: Annotated[int, Field(ge=1024, le=4 * MIB)] = 4 * MIB
    # One endpoint attempt takes at most connect + read; the client's retries stop at its budget
    # (endpoint_client.ENDPOINT_BUDGET_SECONDS), so fast failures are retried and slow ones are not.
    endpoint_connect_timeout: Annotated[float, Field(gt=0, le=10)] = 2.0
    endpoint_read_timeout: Annotated[float, Field(gt=0, le=60)] = 8.0
    endpoint_max_attempts: Annotated[int, Field(ge=1, le=5)] = 3
    # The fetch's total deadline is twice this (image_source.guarded_url_fetcher): 6 s of the budget.
    url_fetch_timeout: Annotated[float, Field(gt=0, le=20)] = 3.0
    default_top_k: Annotated[int, Field(ge=1, le=10)] = 3
    # An answer whose top probability is under this counts as low-confidence (the LowConfidence metric).
    low_confidence_probability: Annotated[float, Field(gt=0, lt=1)] = 0.5

    @field_validator("allowed_s3_buckets", mode="before")
    @classmethod
    def _split_buckets(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(name.strip() for name in value.split(",") if name.strip())
        return value

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        environ = os.environ if environ is None else environ
        values = {field: environ[var] for var, field in ENV_VARS.items() if environ.get(var, "") != ""}
        try:
            return cls.model_validate(values)
        except ValidationError as error:
            field_to_var = {field: var for var, field in ENV_VARS.items()}
            problems = []
            for item in error.errors():
                field = str(item["loc"][0]) if item["loc"] else "?"
                var = field_to_var.get(field, field)
                problems.append(f"{var} is missing" if item["type"] == "missing" else f"{var}: {item['msg']}")
            raise SettingsError("invalid function environment: " + "; ".join(problems)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The container's settings, parsed on first use (module import in the handlers)."""
    return Settings.from_env()
