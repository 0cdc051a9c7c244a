"""Real multi-process training (gloo DDP over loopback) and spot-interruption resume, with
train.py started as separate processes under the launchers' environment contracts."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import pytest
import torch
from dogbreed_job import artifacts, checkpoint, data, engine, export
from dogbreed_job.distributed import DistributedEnv
from dogbreed_job.model import build_model
from torch.utils.data import DataLoader

from dogbreed.loopback import free_port
from tests.integration import training_runs

pytestmark = pytest.mark.slow

WORLD_SIZE = 2
CLASSES = 5


@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # 5 classes x 20 = 100 training images: an even split, so the training shards need no padding;
    # 25 validation and test images: uneven evaluation shards (13 and 12 images).
    return training_runs.dataset(
        tmp_path_factory.mktemp("ddp") / "data", classes=CLASSES, per_class=20, size=40
    )


def _launcher_env(style: str, rank: int, port: int) -> dict[str, str]:
    if style == "torchrun":
        return training_runs.clean_env(
            RANK=str(rank),
            WORLD_SIZE=str(WORLD_SIZE),
            LOCAL_RANK=str(rank),
            LOCAL_WORLD_SIZE=str(WORLD_SIZE),
            MASTER_ADDR="127.0.0.1",
            MASTER_PORT=str(port),
        )
    # SageMaker hosts as processes on one machine: host names need not resolve.
    return training_runs.clean_env(
        SM_HOSTS=json.dumps([f"algo-{index + 1}" for index in range(WORLD_SIZE)]),
        SM_CURRENT_HOST=f"algo-{rank + 1}",
        MASTER_ADDR="127.0.0.1",
        OMP_NUM_THREADS="1",
    )


@pytest.mark.parametrize("style", ["torchrun", "sm_hosts"])
def test_two_process_gloo_ddp_trains_disjoint_shards_to_identical_weights(
    style: str, small_dataset: Path, tmp_path: Path
) -> None:
    port = free_port()
    output_dir = tmp_path / "output"
    processes = []
    for rank in range(WORLD_SIZE):
        args = [
            *training_runs.FAST_ARGS,
            "--data-dir", str(small_dataset),
            "--model-dir", str(tmp_path / f"model-rank{rank}"),
            "--output-dir", str(output_dir),
            "--checkpoint-dir", str(tmp_path / f"checkpoints-rank{rank}"),
            "--epochs", "2",
            "--batch-size", "12",  # evaluation shards of 13 and 12 images: 2 batches vs 1
            "--master-port", str(port),
            "--dist-timeout", "300",
            "--record-shards",
        ]  # fmt: skip
        processes.append(
            subprocess.Popen(
                training_runs.train_command(args),
                env=_launcher_env(style, rank, port),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    runs = []
    for process in processes:
        stdout, stderr = process.communicate(timeout=540)
        runs.append(training_runs.Run(process.returncode, stdout, stderr))
    for run in runs:
        training_runs.assert_ok(run)

    records = [
        json.loads((output_dir / "shards" / f"rank{rank}.json").read_text()) for rank in range(WORLD_SIZE)
    ]
    train_size = records[0]["train_size"]
    assert train_size == 100
    for epoch in ("1", "2"):
        shards = [set(record["epochs"][epoch]) for record in records]
        assert all(len(shard) == train_size // WORLD_SIZE for shard in shards)
        assert not shards[0] & shards[1], f"epoch {epoch}: ranks trained on the same images"
        assert shards[0] | shards[1] == set(range(train_size))
    assert records[0]["epochs"]["1"] != records[0]["epochs"]["2"], "set_epoch must reshuffle the shards"
    assert records[0]["weights_sha256"] == records[1]["weights_sha256"]

    # Only rank 0 reports and saves; what it saved is the weights both ranks ended with.
    assert len(training_runs.epoch_lines(runs[0].stdout)) == 2
    assert not training_runs.epoch_lines(runs[1].stdout)
    assert "test_acc=" not in runs[1].stdout
    assert not (tmp_path / "model-rank1").exists()
    assert not (tmp_path / "checkpoints-rank1").exists()
    model_dir = tmp_path / "model-rank0"
    saved = build_model("resnet18", CLASSES, pretrained=False)
    saved.load_state_dict(
        torch.load(model_dir / artifacts.WEIGHTS_FILE, map_location="cpu", weights_only=True)
    )
    assert export.state_dict_digest(saved) == records[0]["weights_sha256"]

    # The all-reduced test metrics equal a single-process evaluation of the saved model.
    recorded = json.loads((model_dir / artifacts.METRICS_FILE).read_text())
    assert recorded["world_size"] == WORLD_SIZE
    splits = data.load_splits(small_dataset, image_size=32)
    loader = DataLoader(
        splits.test, batch_size=7, sampler=data.ShardedEvalSampler(len(splits.test), DistributedEnv())
    )
    single = engine.evaluate(saved, loader, torch.device("cpu"), num_classes=CLASSES)
    assert recorded["samples"]["test"] == single.samples == len(splits.test)
    assert recorded["test_acc"] == pytest.approx(single.acc, abs=1e-9)
    assert recorded["test_loss"] == pytest.approx(single.loss, rel=1e-4)
    assert recorded["confusion_matrix"] == single.confusion


def _sagemaker_env(root: Path, job_name: str) -> dict[str, str]:
    return training_runs.clean_env(
        SM_CHANNEL_TRAINING=str(root / "data"),
        SM_MODEL_DIR=str(root / job_name / "model"),
        SM_OUTPUT_DATA_DIR=str(root / job_name / "output"),
        SM_CHECKPOINT_DIR=str(root / job_name / "checkpoints"),
        TRAINING_JOB_NAME=job_name,
    )


# Hyperparameters as SageMaker passes them: `--key value` strings, plus its own sagemaker_* keys.
SPOT_HYPERPARAMETERS = [
    "--epochs", "3",
    "--backbone", "resnet18",
    "--no-pretrained", "True",
    "--image-size", "32",
    "--batch-size", "32",
    "--learning-rate", "0.002",
    "--workers", "0",
    "--resume", "true",
    "--sagemaker_program", "train.py",
    "--sagemaker_container_log_level", "20",
]  # fmt: skip


def test_spot_interruption_resumes_from_the_saved_epoch_and_matches_an_uninterrupted_run(
    small_dataset: Path, tmp_path: Path
) -> None:
    (tmp_path / "data").symlink_to(small_dataset, target_is_directory=True)
    env = _sagemaker_env(tmp_path, "spot-job")

    # Given a job killed (SIGKILL, like a reclaimed spot instance) right after epoch 2 was reported
    process = subprocess.Popen(
        training_runs.train_command(SPOT_HYPERPARAMETERS),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    first_log = []
    for line in process.stdout:
        first_log.append(line)
        if line.startswith("epoch=2 "):
            process.send_signal(signal.SIGKILL)
            break
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL, "".join(first_log)[-3000:]
    saved = checkpoint.load_checkpoint(tmp_path / "spot-job" / "checkpoints")
    assert saved is not None and saved["epoch"] == 2
    assert not (tmp_path / "spot-job" / "model" / artifacts.WEIGHTS_FILE).exists()

    # When SageMaker restarts it with the same hyperparameters and the restored checkpoint dir
    resumed = training_runs.run_train(SPOT_HYPERPARAMETERS, env)
    training_runs.assert_ok(resumed)

    # Then only epoch 3 runs, and the result is what an uninterrupted job produces
    assert [line.split()[0] for line in training_runs.epoch_lines(resumed.stdout)] == ["epoch=3"]
    assert "ignoring SageMaker hyperparameter sagemaker_program" in resumed.stdout
    model_dir = tmp_path / "spot-job" / "model"
    resumed_metrics = json.loads((model_dir / artifacts.METRICS_FILE).read_text())
    assert [row["epoch"] for row in resumed_metrics["history"]] == [1, 2, 3]
    assert artifacts.ModelConfig.load(model_dir).model_version == "spot-job"
    assert not (tmp_path / "spot-job" / artifacts.ARCHIVE_NAME).exists(), (
        "SageMaker packs SM_MODEL_DIR itself"
    )

    uninterrupted = training_runs.run_train(SPOT_HYPERPARAMETERS, _sagemaker_env(tmp_path, "steady-job"))
    training_runs.assert_ok(uninterrupted)
    steady_metrics = json.loads((tmp_path / "steady-job" / "model" / artifacts.METRICS_FILE).read_text())
    for key in ("test_acc", "test_loss", "best_epoch", "val_acc"):
        assert resumed_metrics[key] == pytest.approx(steady_metrics[key], abs=1e-5), key
