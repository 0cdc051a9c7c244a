"""boto3 clients for the functions that read or write many S3 objects (the dataset gate, the batch
functions, the drift monitor): bounded timeouts, the standard retry mode, and a connection pool as
large as the caller's threads. One client per service and pool size, made once per container."""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from botocore.config import Config

CONNECT_TIMEOUT_SECONDS = 5
READ_TIMEOUT_SECONDS = 30
MAX_ATTEMPTS = 5


@cache
def client(service: str, max_pool_connections: int = 10) -> Any:
    config = Config(
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        read_timeout=READ_TIMEOUT_SECONDS,
        retries={"mode": "standard", "max_attempts": MAX_ATTEMPTS},
        max_pool_connections=max_pool_connections,
    )
    return boto3.client(service, config=config)
