"""Shared pieces of the local cloud tests: start/stop a cloud on free ports, boto3 from its exports,
and the process/port leak check."""

from __future__ import annotations

import io
import tarfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import boto3

from dogbreed.commands.local import running_state, start_cloud, stop_cloud
from dogbreed.local.cloud.state import CloudState
from dogbreed.loopback import free_port

T = TypeVar("T")


@contextmanager
def local_cloud(
    state_dir: Path, overrides: list[str] | None = None, *, loopback_urls: bool = True
) -> Iterator[CloudState]:
    state = start_cloud(
        state_dir,
        aws_port=free_port(),
        api_port=free_port(),
        overrides=overrides or [],
        quiet=True,
        loopback_urls=loopback_urls,
    )
    try:
        yield state
    finally:
        stop_cloud(state_dir)


def session_from_exports(env: dict[str, str]) -> tuple[boto3.session.Session, dict[str, str]]:
    """A boto3 session configured only from `dogbreed local env`'s variables (as a user's shell would)."""
    session = boto3.session.Session(
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=env["AWS_DEFAULT_REGION"],
    )
    return session, env


def pack_model(model_dir: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path in sorted(model_dir.iterdir()):
            tar.add(path, arcname=path.name)
    return buffer.getvalue()


def wait_for(check: Callable[[], T | None], *, timeout: float, what: str, interval: float = 0.5) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


__all__ = ["local_cloud", "running_state", "stop_cloud"]
