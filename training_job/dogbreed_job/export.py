"""Write a complete model directory (the contract in `artifacts.py`) and pack it like SageMaker does.

`export_model_dir` is the one writer of model directories: train.py calls it at the end of a run,
and tests elsewhere call it to build tiny model directories.
"""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import json
import logging
import shutil
import tarfile
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from dogbreed_job import artifacts

logger = logging.getLogger(__name__)

# The training job's source_dir (train.py, inference.py, dogbreed_job). On SageMaker this is the
# unpacked `source_dir`; in a checkout it is `training_job/`.
SOURCE_DIR = Path(__file__).resolve().parents[1]
INFERENCE_SCRIPT = "inference.py"
# Packages that inference.py imports; copied whole under code/ from where this process imports them
# (on SageMaker the unpacked source_dir, which dogbreed.packaging builds with the shared packages).
CODE_PACKAGES: tuple[str, ...] = ("dogbreed_job", "request_guards")
# No code/requirements.txt: the SageMaker PyTorch serving container would pip-install it at start,
# which needs the internet. inference.py runs on what the image has (torch, numpy, Pillow), with
# model.onnx when onnxruntime is there and model.pth otherwise (docs/serving.md).

ONNX_INPUT_NAME = "input"
ONNX_OUTPUT_NAME = "logits"
ONNX_OPSET = 17
ONNX_ATOL = 1e-4
ONNX_RTOL = 1e-3


class ExportError(RuntimeError):
    """The model directory could not be written as the contract requires."""


def export_model_dir(
    model: nn.Module,
    *,
    model_dir: Path | str,
    classes: Sequence[str],
    config: artifacts.ModelConfig,
    metrics: Mapping[str, Any] | None = None,
    history: Sequence[Mapping[str, Any]] | None = None,
    source_dir: Path | str | None = None,
) -> Path:
    """Write weights, config, classes, metrics, the verified ONNX export, `code/` and (with `history`
    or a confusion matrix in `metrics`) the evaluation report into `model_dir`. Returns `model_dir`.

    `model` may be wrapped in DDP; it is copied to the CPU in eval mode, the original is untouched.
    """
    model_dir = Path(model_dir)
    source = Path(source_dir) if source_dir is not None else SOURCE_DIR
    if len(classes) != config.num_classes:
        raise ExportError(f"{len(classes)} class names for a model with {config.num_classes} classes")
    inference_script = source / INFERENCE_SCRIPT
    if not inference_script.is_file():
        raise ExportError(
            f"{inference_script} is missing: the model directory needs code/{INFERENCE_SCRIPT} "
            "(the SageMaker serving handler) next to train.py"
        )
    model_dir.mkdir(parents=True, exist_ok=True)
    network = unwrap(model)
    cpu_model = copy.deepcopy(network).to("cpu").to(memory_format=torch.contiguous_format).eval()

    torch.save(cpu_model.state_dict(), model_dir / artifacts.WEIGHTS_FILE)
    config.save(model_dir)
    artifacts.save_classes(model_dir, list(classes))
    if metrics is not None:
        (model_dir / artifacts.METRICS_FILE).write_text(json.dumps(dict(metrics), indent=2) + "\n")
    export_onnx(cpu_model, model_dir / artifacts.ONNX_FILE, image_size=config.image_size)
    write_code_dir(model_dir / artifacts.CODE_DIR, source)
    if history or (metrics is not None and "confusion_matrix" in metrics):
        from dogbreed_job import report

        report.write_report(
            model_dir / artifacts.REPORT_DIR,
            classes=list(classes),
            history=list(history or []),
            metrics=dict(metrics or {}),
        )
    logger.info("model directory written to %s", model_dir)
    return model_dir


def unwrap(model: nn.Module) -> nn.Module:
    """The network inside a DistributedDataParallel (or DataParallel) wrapper."""
    inner = getattr(model, "module", None)
    return inner if isinstance(inner, nn.Module) else model


def export_onnx(model: nn.Module, path: Path, *, image_size: int) -> float:
    """Export with input `input`, output `logits` and a dynamic batch axis, then check onnxruntime
    against PyTorch on a batch of a different size. Returns the max abs difference; raises
    ExportError when it exceeds the tolerance."""
    model = model.eval()
    example = torch.randn(1, 3, image_size, image_size)
    with warnings.catch_warnings():
        # The TorchScript-based exporter is used on purpose: it needs no tracing toolchain and is
        # fast on CPU; the result is verified below either way.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (example,),
            str(path),
            input_names=[ONNX_INPUT_NAME],
            output_names=[ONNX_OUTPUT_NAME],
            dynamic_axes={ONNX_INPUT_NAME: {0: "batch"}, ONNX_OUTPUT_NAME: {0: "batch"}},
            opset_version=ONNX_OPSET,
            dynamo=False,
        )
    return verify_onnx(model, path, image_size=image_size)


def verify_onnx(model: nn.Module, path: Path, *, image_size: int, batch_size: int = 3) -> float:
    import onnxruntime as ort

    generator = torch.Generator().manual_seed(0)
    batch = torch.randn(batch_size, 3, image_size, image_size, generator=generator)
    with torch.inference_mode():
        expected = model.eval()(batch).numpy()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    input_names = [item.name for item in session.get_inputs()]
    output_names = [item.name for item in session.get_outputs()]
    if input_names != [ONNX_INPUT_NAME] or output_names != [ONNX_OUTPUT_NAME]:
        raise ExportError(f"ONNX graph has inputs {input_names} / outputs {output_names}")
    (actual,) = session.run([ONNX_OUTPUT_NAME], {ONNX_INPUT_NAME: batch.numpy()})
    max_diff = float(np.max(np.abs(actual - expected)))
    if actual.shape != expected.shape or not np.allclose(actual, expected, atol=ONNX_ATOL, rtol=ONNX_RTOL):
        raise ExportError(
            f"ONNX export does not match PyTorch: shape {actual.shape} vs {expected.shape}, "
            f"max abs diff {max_diff:.3g} (atol {ONNX_ATOL}, rtol {ONNX_RTOL})"
        )
    logger.info("ONNX export verified against PyTorch (max abs diff %.3g)", max_diff)
    return max_diff


def write_code_dir(code_dir: Path, source_dir: Path) -> None:
    """code/: inference.py and the packages it imports (nothing for the container to install)."""
    if code_dir.exists():
        shutil.rmtree(code_dir)
    code_dir.mkdir(parents=True)
    shutil.copy2(source_dir / INFERENCE_SCRIPT, code_dir / INFERENCE_SCRIPT)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for package in CODE_PACKAGES:
        shutil.copytree(imported_package_dir(package), code_dir / package, ignore=ignore)


def imported_package_dir(package: str) -> Path:
    """The directory `import <package>` loads from in this process (symlinks resolved)."""
    spec = importlib.util.find_spec(package)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if len(locations) != 1 or not (Path(locations[0]) / "__init__.py").is_file():
        raise ExportError(f"{package} is not an importable package; code/ needs it for {INFERENCE_SCRIPT}")
    return Path(locations[0]).resolve()


def pack_model_archive(model_dir: Path | str, archive_path: Path | str | None = None) -> Path:
    """Pack the model directory's files at the archive root, as SageMaker packs `SM_MODEL_DIR`.
    Defaults to `model.tar.gz` next to (not inside) the model directory."""
    model_dir = Path(model_dir).resolve()
    archive = Path(archive_path) if archive_path is not None else model_dir.parent / artifacts.ARCHIVE_NAME
    archive.parent.mkdir(parents=True, exist_ok=True)
    partial = archive.with_name(archive.name + ".partial")
    with tarfile.open(partial, "w:gz", compresslevel=6) as tar:
        for path in sorted(model_dir.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                tar.add(path, arcname=path.relative_to(model_dir).as_posix(), recursive=False)
    partial.replace(archive)
    logger.info("model archive written to %s", archive)
    return archive


def state_dict_digest(model: nn.Module) -> str:
    """SHA-256 over the network's state_dict (names, dtypes, shapes and values), DDP prefix-free."""
    digest = hashlib.sha256()
    for name, tensor in sorted(unwrap(model).state_dict().items()):
        value = tensor.detach().to("cpu").contiguous()
        if value.dtype == torch.bfloat16:  # numpy has no bfloat16
            value = value.float()
        digest.update(name.encode())
        digest.update(str(value.dtype).encode())
        digest.update(str(tuple(value.shape)).encode())
        digest.update(value.numpy().tobytes())
    return digest.hexdigest()
