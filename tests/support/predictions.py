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


def unsure_candidate(model_dir: Path, target: Path, suffix: str = "unsure") -> Path:
    """A broken candidate that serves fine and answers nonsense: the served model with its classifier
    zeroed, so every answer is uniform (1/3 per class: low-confidence), under a new version."""
    import torch
    from dogbreed_job import artifacts
    from dogbreed_job.export import export_model_dir
    from dogbreed_job.model import build_model

    config = artifacts.ModelConfig.load(model_dir)
    model = build_model(config.backbone, config.num_classes, pretrained=False)
    model.load_state_dict(
        torch.load(model_dir / artifacts.WEIGHTS_FILE, map_location="cpu", weights_only=True)
    )
    with torch.no_grad():
        for parameter in model.get_submodule("fc").parameters():
            parameter.zero_()
    version = f"{config.model_version}-{suffix}"
    return export_model_dir(
        model,
        model_dir=target,
        classes=artifacts.load_classes(model_dir),
        config=dataclasses.replace(config, model_version=version),
    )
