"""The model-directory writer: weights, config, classes, verified ONNX, code/, report and archive."""

from __future__ import annotations

import ast
import json
import tarfile
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from dogbreed_job import artifacts, export
from dogbreed_job.model import build_model

CLASSES = ["Affenpinscher", "Afghan_hound", "Airedale_terrier"]
IMAGE_SIZE = 32


@pytest.fixture
def source_dir(tmp_path: Path) -> Path:
    """A training source_dir's serving script (the packages come from where they are imported)."""
    source = tmp_path / "source"
    source.mkdir()
    (source / export.INFERENCE_SCRIPT).write_text((export.SOURCE_DIR / export.INFERENCE_SCRIPT).read_text())
    return source


def _modules_imported_from(script: Path, package: str) -> set[str]:
    """`package.x` for every `from package.x import ...`, `from package import x` or `import package.x`."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(script.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module == package:
            found.update(f"{package}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(package + "."):
            found.add(str(node.module))
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith(package + "."))
    return found


def _config() -> artifacts.ModelConfig:
    return artifacts.ModelConfig(
        backbone="resnet18", num_classes=len(CLASSES), image_size=IMAGE_SIZE, model_version="v-test"
    )


def _model(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model("resnet18", len(CLASSES), pretrained=False).eval()


def test_export_writes_the_whole_model_dir_contract(tmp_path: Path, source_dir: Path) -> None:
    model = _model()
    metrics = {"test_acc": 0.5, "confusion_matrix": [[1, 0, 0], [0, 1, 0], [1, 0, 0]]}
    history = [{"epoch": 1, "train_loss": 1.0, "train_acc": 0.4, "val_loss": 0.9, "val_acc": 0.5}]

    model_dir = export.export_model_dir(
        model,
        model_dir=tmp_path / "model",
        classes=CLASSES,
        config=_config(),
        metrics=metrics,
        history=history,
        source_dir=source_dir,
    )

    assert artifacts.ModelConfig.load(model_dir) == _config()
    assert artifacts.load_classes(model_dir) == CLASSES
    assert json.loads((model_dir / artifacts.METRICS_FILE).read_text())["test_acc"] == 0.5
    code = model_dir / artifacts.CODE_DIR
    assert (code / "inference.py").read_text() == (source_dir / "inference.py").read_text()
    assert not (code / "requirements.txt").exists()  # the serving container would pip-install it
    for package in export.CODE_PACKAGES:
        assert (code / package / "__init__.py").is_file()
        assert not (code / package).is_symlink()
    assert (code / "dogbreed_job" / "transforms.py").is_file()
    # Every module the handler imports (the serving_* modules included) is under code/.
    handler_modules = _modules_imported_from(code / "inference.py", "dogbreed_job")
    assert {"dogbreed_job.serving_input", "dogbreed_job.serving_model", "dogbreed_job.serving_output"} <= (
        handler_modules
    )
    for module in handler_modules:
        assert (code / (module.replace(".", "/") + ".py")).is_file(), module
    report = model_dir / artifacts.REPORT_DIR
    for name in ("training_curves.png", "confusion_matrix.png"):
        assert (report / name).read_bytes().startswith(b"\x89PNG")
    assert "test_acc" in (report / "report.md").read_text()


def test_saved_weights_load_without_network_and_reproduce_the_model(tmp_path: Path, source_dir: Path) -> None:
    model = _model(seed=3)
    model_dir = export.export_model_dir(
        model, model_dir=tmp_path / "model", classes=CLASSES, config=_config(), source_dir=source_dir
    )
    reloaded = build_model("resnet18", len(CLASSES), pretrained=False)
    state = torch.load(model_dir / artifacts.WEIGHTS_FILE, map_location="cpu", weights_only=True)
    assert not any(key.startswith("module.") for key in state)
    reloaded.load_state_dict(state)
    batch = torch.randn(2, 3, IMAGE_SIZE, IMAGE_SIZE)

    with torch.inference_mode():
        assert torch.equal(reloaded.eval()(batch), model(batch))


def test_onnx_export_matches_pytorch_for_any_batch_size(tmp_path: Path, source_dir: Path) -> None:
    model = _model(seed=1)
    model_dir = export.export_model_dir(
        model, model_dir=tmp_path / "model", classes=CLASSES, config=_config(), source_dir=source_dir
    )
    session = ort.InferenceSession(str(model_dir / artifacts.ONNX_FILE), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["input"]
    assert [o.name for o in session.get_outputs()] == ["logits"]

    for batch_size in (1, 5):
        batch = torch.randn(batch_size, 3, IMAGE_SIZE, IMAGE_SIZE)
        (logits,) = session.run(["logits"], {"input": batch.numpy()})
        with torch.inference_mode():
            expected = model(batch).numpy()
        assert logits.shape == (batch_size, len(CLASSES))
        np.testing.assert_allclose(logits, expected, atol=1e-4, rtol=1e-3)


def test_onnx_verification_fails_loudly_when_the_graph_differs(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    export.export_onnx(_model(seed=1), path, image_size=IMAGE_SIZE)

    with pytest.raises(export.ExportError, match="does not match PyTorch"):
        export.verify_onnx(_model(seed=2), path, image_size=IMAGE_SIZE)


def test_export_without_a_serving_script_fails_clearly(tmp_path: Path) -> None:
    with pytest.raises(export.ExportError, match=r"inference\.py is missing"):
        export.export_model_dir(
            _model(), model_dir=tmp_path / "model", classes=CLASSES, config=_config(), source_dir=tmp_path
        )


def test_export_rejects_a_class_list_that_does_not_fit_the_model(tmp_path: Path, source_dir: Path) -> None:
    with pytest.raises(export.ExportError, match="2 class names"):
        export.export_model_dir(
            _model(), model_dir=tmp_path / "m", classes=CLASSES[:2], config=_config(), source_dir=source_dir
        )


def test_archive_holds_the_model_dir_files_at_its_root(tmp_path: Path, source_dir: Path) -> None:
    model_dir = export.export_model_dir(
        _model(), model_dir=tmp_path / "model", classes=CLASSES, config=_config(), source_dir=source_dir
    )

    archive = export.pack_model_archive(model_dir)

    assert archive == tmp_path / "model.tar.gz"
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
    expected = {
        str(path.relative_to(model_dir).as_posix())
        for path in model_dir.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    assert names == expected
    assert {"model.pth", "model_config.json", "classes.json", "model.onnx", "code/inference.py"} <= names


def test_state_dict_digest_ignores_the_ddp_wrapper_and_sees_weight_changes() -> None:
    model = _model(seed=4)

    class Wrapper(torch.nn.Module):
        def __init__(self, module: torch.nn.Module) -> None:
            super().__init__()
            self.module = module

    assert export.state_dict_digest(Wrapper(model)) == export.state_dict_digest(model)
    before = export.state_dict_digest(model)
    with torch.no_grad():
        next(model.parameters()).add_(1e-3)
    assert export.state_dict_digest(model) != before
