"""Per-sample metrics, evaluation shards, datasets and checkpoints of the training job."""

from __future__ import annotations

import inspect
import shutil
from pathlib import Path

import pytest
import torch
from dogbreed_job import checkpoint, data, engine
from dogbreed_job.distributed import DistributedEnv
from torch.utils.data import DataLoader, TensorDataset

from dogbreed.data.synth import synthesize


def _fixed_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Linear(4, 3)


def _dataset(size: int = 7) -> TensorDataset:
    generator = torch.Generator().manual_seed(1)
    inputs = torch.randn(size, 4, generator=generator)
    targets = torch.randint(0, 3, (size,), generator=generator)
    return TensorDataset(inputs, targets)


@pytest.mark.parametrize(("gpu", "capability", "expected"), [("T4", (7, 5), False), ("A10G", (8, 6), True)])
def test_bf16_autocast_only_where_the_gpu_has_it_natively(
    monkeypatch: pytest.MonkeyPatch, gpu: str, capability: tuple[int, int], expected: bool
) -> None:
    """torch counts emulated bf16 by default (True on a T4, whose cuDNN has no bf16 convolutions)."""

    def is_bf16_supported(including_emulation: bool = True) -> bool:
        return including_emulation or capability >= (8, 0)

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", is_bf16_supported)

    assert engine.native_bf16() is expected, gpu


def test_torch_still_separates_emulated_bf16() -> None:
    assert "including_emulation" in inspect.signature(torch.cuda.is_bf16_supported).parameters


def test_evaluation_averages_loss_per_sample_not_per_batch() -> None:
    model, dataset = _fixed_model(), _dataset(7)
    loader = DataLoader(dataset, batch_size=3)  # batches of 3, 3 and 1
    inputs, targets = dataset.tensors

    result = engine.evaluate(model, loader, torch.device("cpu"), num_classes=3)

    with torch.inference_mode():
        logits = model(inputs)
    assert result.samples == 7
    assert result.loss == pytest.approx(torch.nn.functional.cross_entropy(logits, targets).item(), rel=1e-6)
    assert result.acc == pytest.approx((logits.argmax(1) == targets).float().mean().item())
    assert result.top5 == 1.0  # top-5 of 3 classes is every class
    assert sum(map(sum, result.confusion)) == 7
    assert sum(result.confusion[c][c] for c in range(3)) == round(result.acc * 7)


def test_per_class_accuracy_comes_from_the_confusion_matrix() -> None:
    result = engine.EvalResult(loss=0.0, acc=0.0, top5=0.0, samples=6, confusion=[[2, 0], [3, 1]])

    assert result.per_class_acc(["a", "b"]) == {"a": 1.0, "b": 0.25}


def test_training_epoch_reports_per_sample_loss_and_learns() -> None:
    model, dataset = _fixed_model(), _dataset(32)
    loader = DataLoader(dataset, batch_size=5)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    criterion = torch.nn.CrossEntropyLoss()

    first = engine.train_one_epoch(model, criterion, optimizer, loader, torch.device("cpu"))
    for _ in range(20):
        last = engine.train_one_epoch(model, criterion, optimizer, loader, torch.device("cpu"))

    assert first.samples == last.samples == 32
    assert last.loss < first.loss
    assert 0.0 <= last.acc <= 1.0


@pytest.mark.parametrize("length", [0, 1, 7, 10])
@pytest.mark.parametrize("world_size", [1, 2, 3, 4])
def test_evaluation_shards_cover_a_split_exactly_once(length: int, world_size: int) -> None:
    seen: list[int] = []
    for rank in range(world_size):
        sampler = data.ShardedEvalSampler(length, DistributedEnv(rank=rank, world_size=world_size))
        indices = list(sampler)
        assert len(indices) == len(sampler)
        seen += indices

    assert sorted(seen) == list(range(length))


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthesize(tmp_path_factory.mktemp("data") / "ds", classes=3, per_class=4, size=32, seed=0)


def test_splits_index_classes_from_the_sorted_train_folders(tiny_dataset: Path) -> None:
    splits = data.load_splits(tiny_dataset, image_size=32)

    assert splits.classes == ["Affenpinscher", "Afghan_hound", "Airedale_terrier"]
    assert len(splits.train) == 12
    assert sorted(set(splits.valid.labels)) == [0, 1, 2]
    image, label = splits.test[0]
    assert tuple(image.shape) == (3, 32, 32)
    assert label == 0


def test_a_split_with_a_class_unknown_to_train_is_rejected(tiny_dataset: Path, tmp_path: Path) -> None:
    copy = tmp_path / "ds"
    shutil.copytree(tiny_dataset, copy)
    shutil.copytree(copy / "valid" / "001.Affenpinscher", copy / "valid" / "099.Not_in_train")

    with pytest.raises(data.DatasetLayoutError, match=r"099\.Not_in_train"):
        data.load_splits(copy, image_size=32)


def test_a_missing_split_is_rejected(tiny_dataset: Path, tmp_path: Path) -> None:
    copy = tmp_path / "ds"
    shutil.copytree(tiny_dataset, copy)
    shutil.rmtree(copy / "test")

    with pytest.raises(data.DatasetLayoutError, match="test is missing"):
        data.load_splits(copy, image_size=32)


def test_checkpoint_round_trip_and_absence(tmp_path: Path) -> None:
    assert checkpoint.load_checkpoint(tmp_path) is None
    model = _fixed_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "lr_scheduler": {}, "epoch": 4}

    checkpoint.save_checkpoint(tmp_path, state)
    loaded = checkpoint.load_checkpoint(tmp_path)

    assert loaded is not None
    assert loaded["epoch"] == 4
    assert torch.equal(loaded["model"]["weight"], model.state_dict()["weight"])
    assert not list(tmp_path.glob("*.partial"))


def test_a_file_that_is_not_a_checkpoint_is_rejected(tmp_path: Path) -> None:
    torch.save({"weights": 1}, tmp_path / checkpoint.CHECKPOINT_FILE)

    with pytest.raises(ValueError, match="not a training checkpoint"):
        checkpoint.load_checkpoint(tmp_path)


def test_checkpoint_dir_defaults(tmp_path: Path) -> None:
    assert checkpoint.default_checkpoint_dir({"SM_CHECKPOINT_DIR": str(tmp_path)}) == str(tmp_path)


def test_each_sagemaker_job_keeps_its_checkpoints_in_a_folder_of_its_own(tmp_path: Path) -> None:
    # Given two tuning trials whose checkpoint prefix SageMaker restores into both containers
    env = {"SM_CHECKPOINT_DIR": str(tmp_path)}
    first = checkpoint.default_checkpoint_dir({**env, "TRAINING_JOB_NAME": "hpo-1a2b3c4d-261204-001-aaaa"})
    second = checkpoint.default_checkpoint_dir({**env, "TRAINING_JOB_NAME": "hpo-1a2b3c4d-261204-002-bbbb"})
    assert first is not None and second is not None
    state = {"model": {}, "optimizer": {}, "lr_scheduler": {}, "epoch": 3}
    checkpoint.save_checkpoint(Path(first), state)

    # Then the second trial finds no checkpoint to resume from, and the first finds its own
    assert checkpoint.load_checkpoint(Path(second)) is None
    assert checkpoint.load_checkpoint(Path(first)) == state
