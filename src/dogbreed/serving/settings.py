"""Server settings, passed to worker processes through one environment variable."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

SETTINGS_ENV = "DOGBREED_SERVE_SETTINGS"
DEFAULT_PORT = 8080
DEFAULT_MAX_BATCH_SIZE = 4
DEFAULT_MAX_BATCH_DELAY_MS = 5.0
DEFAULT_PREPROCESS_THREADS = 2
GRACEFUL_SHUTDOWN_S = 30


@dataclass(frozen=True)
class ServeSettings:
    model_dir: str
    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE
    max_batch_delay_ms: float = DEFAULT_MAX_BATCH_DELAY_MS
    preprocess_threads: int = DEFAULT_PREPROCESS_THREADS

    def __post_init__(self) -> None:
        if self.max_batch_size < 1:
            raise ValueError("max_batch_size must be at least 1")
        if self.max_batch_delay_ms < 0:
            raise ValueError("max_batch_delay_ms must not be negative")
        if self.preprocess_threads < 1:
            raise ValueError("preprocess_threads must be at least 1")

    @property
    def model_path(self) -> Path:
        return Path(self.model_dir)

    def to_env(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls) -> ServeSettings:
        raw = os.environ.get(SETTINGS_ENV)
        if not raw:
            raise RuntimeError(f"{SETTINGS_ENV} is not set; start the server with `dogbreed serve`")
        return cls(**json.loads(raw))
