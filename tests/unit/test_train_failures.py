"""The training job fails fast and says why: bad datasets before any compute, offline pretrained
weights with a hint, and SageMaker's FailureReason file."""

from __future__ import annotations

import urllib.error
from pathlib import Path

import pytest
import torchvision.models._api as weights_api
import train

from dogbreed.data.synth import synthesize


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    return synthesize(tmp_path / "data", classes=2, per_class=2, size=32, seed=0)


@pytest.fixture
def sm_output_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    output = tmp_path / "sm-output"
    monkeypatch.setenv("SM_OUTPUT_DIR", str(output))
    return output


def _argv(dataset: Path, tmp_path: Path, *extra: str) -> list[str]:
    return [
        "--data-dir", str(dataset),
        "--model-dir", str(tmp_path / "model"),
        "--output-dir", str(tmp_path / "output"),
        "--backbone", "resnet18",
        "--image-size", "32",
        "--epochs", "1",
        "--workers", "0",
        *extra,
    ]  # fmt: skip


def test_offline_pretrained_weights_fail_with_a_hint_to_train_from_scratch(
    dataset: Path,
    tmp_path: Path,
    sm_output_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def offline(*_args: object, **_kwargs: object) -> None:
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-hub-cache"))
    monkeypatch.setattr(weights_api, "load_state_dict_from_url", offline)

    code = train.run(_argv(dataset, tmp_path))

    assert code == 1
    stderr = capsys.readouterr().err
    assert "could not load pretrained resnet18 weights" in stderr
    assert "--no-pretrained" in stderr
    assert "--no-pretrained" in (sm_output_dir / "failure").read_text()
    assert not (tmp_path / "model").exists()


def test_a_dataset_that_fails_the_check_stops_before_training(
    dataset: Path, tmp_path: Path, sm_output_dir: Path
) -> None:
    (dataset / "train" / "001.Affenpinscher" / "notes.jpg").write_text("not a picture")

    with pytest.raises(SystemExit) as raised:
        train.run(_argv(dataset, tmp_path, "--no-pretrained"))

    message = str(raised.value.code)
    assert message.startswith(f"dataset check failed for {dataset}")
    assert "notes.jpg" in message
    assert "notes.jpg" in (sm_output_dir / "failure").read_text()
    assert not (tmp_path / "output" / "checkpoints").exists()
    assert not (tmp_path / "model").exists()


def test_a_layout_error_without_the_check_is_a_clean_error(
    dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (dataset / "test").rename(tmp_path / "moved-test")

    code = train.run(_argv(dataset, tmp_path, "--no-pretrained", "--check-data", "false"))

    assert code == 1
    assert "test is missing" in capsys.readouterr().err


def test_a_global_batch_smaller_than_the_world_size_fails_before_the_processes_meet(
    dataset: Path,
    tmp_path: Path,
    sm_output_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given rank 0 of 4 processes (nobody listens on the master port: a rendezvous would hang)
    for name, value in {"RANK": "0", "WORLD_SIZE": "4", "MASTER_ADDR": "127.0.0.1"}.items():
        monkeypatch.setenv(name, value)

    code = train.run(_argv(dataset, tmp_path, "--no-pretrained", "--batch-size", "3", "--dist-timeout", "5"))

    assert code == 1
    message = "--batch-size 3 is the global batch shared by 4 processes; it must be at least 4"
    assert message in capsys.readouterr().err
    assert message in (sm_output_dir / "failure").read_text()
