"""Prediction traffic for the shared local cloud's tests: an image POSTed to the API, and a candidate
model (the served model under a new version) for endpoint updates."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import httpx

from dogbreed.bench.tiny_model import solid_color_jpeg
from tests.support.local_cloud import CloudWorld


def post_image(world: CloudWorld, class_index: int = 0) -> httpx.Response:
    return httpx.post(
        f"{world.api_url}/predictions",
        content=solid_color_jpeg(class_index),
        headers={"Content-Type": "image/jpeg"},
        timeout=60,
    )


def served_model_version(world: CloudWorld) -> str:
    response = post_image(world)
    assert response.status_code == 201, response.text
    return str(response.json()["model_version"])


def candidate_model(model_dir: Path, target: Path, suffix: str = "candidate") -> Path:
    """The served model under a new version: what a pipeline run would deploy next."""
    from dogbreed_job import artifacts

    shutil.copytree(model_dir, target)
    config = artifacts.ModelConfig.load(target)
    dataclasses.replace(config, model_version=f"{config.model_version}-{suffix}").save(target)
    return target
