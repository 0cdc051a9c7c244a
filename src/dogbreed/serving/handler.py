"""Load the serving handler a model directory ships (`code/inference.py`, what SageMaker runs) or,
for a directory without one, the checkout's `training_job/inference.py`.

This module must not import `dogbreed_job` or `request_guards` itself: the handler's directory goes
first on `sys.path`, so the packages shipped next to it under `code/` are the ones that run.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from dogbreed import TRAINING_JOB_DIR

CODE_DIR = "code"
SCRIPT = "inference.py"
MODULE_NAME = "dogbreed_model_inference"


def handler_script(model_dir: Path) -> Path:
    shipped = model_dir / CODE_DIR / SCRIPT
    return shipped if shipped.is_file() else TRAINING_JOB_DIR / SCRIPT


def import_handler(script: Path) -> ModuleType:
    directory = str(script.parent.resolve())
    if directory not in sys.path:
        sys.path.insert(0, directory)
    spec = importlib.util.spec_from_file_location(MODULE_NAME, script)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import the serving handler {script}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[MODULE_NAME] = module
    spec.loader.exec_module(module)
    return module


@dataclass
class Handler:
    """The model and the handler functions one worker serves with.

    Handlers from this project expose `parse_request` / `predict_many` / `render` (batched path); a
    handler with only the four SageMaker functions is served one request at a time through them.
    """

    module: ModuleType
    model: Any
    script: Path

    @classmethod
    def load(cls, model_dir: Path) -> Handler:
        script = handler_script(model_dir)
        module = import_handler(script)
        return cls(module=module, model=module.model_fn(str(model_dir)), script=script)

    @property
    def input_error(self) -> type[Exception]:
        """The handler's client-error base class (request_guards.errors.InputError)."""
        error: type[Exception] = getattr(self.module, "InputError", ValueError)
        return error

    @property
    def max_body_bytes(self) -> int:
        return int(getattr(self.module, "MAX_BYTES", 6 * 1024 * 1024))

    @property
    def batched(self) -> bool:
        return all(hasattr(self.module, name) for name in ("parse_request", "predict_many", "render"))

    def check_accept(self, accept: str | None) -> None:
        check = getattr(self.module, "check_accept", None)
        if check is not None:
            check(accept)

    @property
    def staged(self) -> bool:
        """The handler separates fetching (I/O) from decoding (CPU)."""
        return all(hasattr(self.module, name) for name in ("read_request", "preprocess_request"))

    def read(self, body: bytes, content_type: str | None, custom_attributes: str | None) -> Any:
        """The I/O stage: validate and fetch (a staged handler), else the whole parse."""
        if self.staged:
            return self.module.read_request(body, content_type, custom_attributes=custom_attributes)
        return self.parse(body, content_type, custom_attributes)

    def prepare(self, request: Any) -> Any:
        """The CPU stage: decode and preprocess what `read` returned."""
        if self.staged:
            return self.module.preprocess_request(request, self.model.image_size)
        return request

    def parse(self, body: bytes, content_type: str | None, custom_attributes: str | None) -> Any:
        if self.batched:
            return self.module.parse_request(
                body, content_type, self.model.image_size, custom_attributes=custom_attributes
            )
        return self.module.input_fn(body, content_type)

    def predict_many(self, requests: Sequence[Any]) -> list[Any]:
        if self.batched:
            return list(self.module.predict_many(requests, self.model))
        return [self.module.predict_fn(request, self.model) for request in requests]

    def images_in(self, request: Any) -> int:
        return len(getattr(request, "top_ks", (None,)))

    def render_rejection(self, error: Exception, accept: str | None) -> tuple[str, str] | None:
        """A bad input as a 200 answer (JSON Lines callers such as Batch Transform), else None."""
        render = getattr(self.module, "render_rejection", None)
        return None if render is None else render(error, accept)

    def render(self, prediction: Any, accept: str | None) -> tuple[str, str]:
        render = self.module.render if self.batched else self.module.output_fn
        body, content_type = render(prediction, accept)
        return str(body), str(content_type)
