"""The monitor function's configuration, parsed from its environment at cold start (a missing or
malformed variable fails the init, naming it)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import timedelta
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from model_monitor.drift import Thresholds
from model_monitor.monitor import MonitorConfig

ENV_VARS: dict[str, str] = {
    "ENDPOINT_NAME": "endpoint_name",
    "CAPTURE_BUCKET": "capture_bucket",
    "CAPTURE_PREFIX": "capture_prefix",
    "WINDOW_MINUTES": "window_minutes",
    "MIN_RECORDS": "min_records",
    "CLASS_DRIFT_THRESHOLD": "class_drift_threshold",
    "CONFIDENCE_DRIFT_THRESHOLD": "confidence_drift_threshold",
    "KS_ALPHA": "ks_alpha",
}


class MonitorSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    endpoint_name: Annotated[str, Field(min_length=1, max_length=63)]
    capture_bucket: Annotated[str, Field(min_length=3, max_length=63)]
    capture_prefix: str = "data-capture"
    window_minutes: Annotated[int, Field(ge=1, le=24 * 60)] = 60
    min_records: Annotated[int, Field(ge=1)] = 30
    class_drift_threshold: Annotated[float, Field(gt=0, le=1)] = 0.1
    confidence_drift_threshold: Annotated[float, Field(gt=0, le=1)] = 0.1
    ks_alpha: Annotated[float, Field(gt=0, lt=1)] = 0.01

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> MonitorSettings:
        environ = os.environ if environ is None else environ
        values = {field: environ[var] for var, field in ENV_VARS.items() if environ.get(var, "") != ""}
        try:
            return cls.model_validate(values)
        except ValidationError as error:
            names = {field: var for var, field in ENV_VARS.items()}
            problems = [
                f"{names.get(str(item['loc'][0]), item['loc'][0])}: {item['msg']}" for item in error.errors()
            ]
            raise RuntimeError("invalid monitor environment: " + "; ".join(problems)) from None

    def monitor_config(self) -> MonitorConfig:
        return MonitorConfig(
            endpoint_name=self.endpoint_name,
            capture_bucket=self.capture_bucket,
            capture_prefix=self.capture_prefix,
            window=timedelta(minutes=self.window_minutes),
            thresholds=Thresholds(
                class_js=self.class_drift_threshold,
                confidence_js=self.confidence_drift_threshold,
                ks_alpha=self.ks_alpha,
                min_records=self.min_records,
            ),
        )
