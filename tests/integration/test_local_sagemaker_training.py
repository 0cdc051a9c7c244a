"""Local SageMaker training jobs against a real moto server: real processes, S3 channels, metrics,
failure reasons, max runtime, checkpoints and a 2-process DDP job running the real train.py."""

from __future__ import annotations

import json
import tarfile
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from dogbreed_job.metrics import METRIC_DEFINITIONS

from dogbreed.data.synth import synthesize
from dogbreed.local.sagemaker import LocalSageMaker
from dogbreed.local.sagemaker.joblog import LOG_GROUP
from tests.integration.local_sagemaker_support import (
    BUCKET,
    client_factory,
    moto_server,
    training_request,
    upload_sourcedir,
    upload_training_code,
    upload_tree,
    wait_for,
)

pytestmark = pytest.mark.slow

FAKE_OK = textwrap.dedent(
    """
    import argparse, json, os, pathlib, time
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--learning-rate", type=float)
    parser.add_argument("--name")
    args = parser.parse_args()
    channel = pathlib.Path(os.environ["SM_CHANNEL_TRAINING"])
    files = sorted(p.relative_to(channel).as_posix() for p in channel.rglob("*") if p.is_file())
    model_dir = pathlib.Path(os.environ["SM_MODEL_DIR"])
    config_dir = pathlib.Path(os.environ["SM_INPUT_CONFIG_DIR"])
    ckpt = pathlib.Path(os.environ["SM_CHECKPOINT_DIR"])
    resumed = (ckpt / "state.json").read_text() if (ckpt / "state.json").exists() else None
    for epoch in range(1, args.epochs + 1):
        losses = f"train_loss={1.0 / epoch:.6f} val_loss={1.5 / epoch:.6f}"
        print(f"epoch={epoch} {losses} val_acc={0.2 * epoch:.6f}")
        (ckpt / "state.json").write_text(json.dumps({"epoch": epoch}))
        time.sleep(0.1)
    print("test_acc=0.750000 test_loss=0.400000 test_top5=1.000000")
    (model_dir / "model.pth").write_text("weights")
    (model_dir / "seen.json").write_text(json.dumps({
        "argv": os.sys.argv[1:], "files": files, "resumed": resumed,
        "hosts": json.loads(os.environ["SM_HOSTS"]),
        "current": os.environ["SM_CURRENT_HOST"],
        "gpus": os.environ["SM_NUM_GPUS"],
        "hps": json.loads((config_dir / "hyperparameters.json").read_text()),
    }))
    (pathlib.Path(os.environ["SM_OUTPUT_DATA_DIR"]) / "extra.txt").write_text("extra")
    """
)

FAKE_FAIL = textwrap.dedent(
    """
    import sys
    print("epoch=1 train_loss=2.0 val_loss=2.1 val_acc=0.1")
    def load(lr):
        raise ValueError(f"learning rate must be positive, got {lr}")
    load(-1)
    """
)

FAKE_SLOW = textwrap.dedent(
    """
    import time
    for step in range(100000):
        print(f"step {step}", flush=True)
        time.sleep(0.2)
    """
)


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("local-sm-training")
    with moto_server() as url:
        clients = client_factory(url)
        s3 = clients("s3")
        s3.create_bucket(Bucket=BUCKET)
        data = synthesize(root / "data", classes=3, per_class=6, size=32, seed=3)
        channel = upload_tree(s3, data, BUCKET, "datasets/tiny")
        sources = {}
        for name, script in (("ok", FAKE_OK), ("fail", FAKE_FAIL), ("slow", FAKE_SLOW)):
            source = root / "src" / name
            source.mkdir(parents=True)
            (source / "train.py").write_text(script)
            sources[name] = upload_sourcedir(s3, source, BUCKET, f"code/{name}/sourcedir.tar.gz")
        backend = LocalSageMaker(
            root / "state",
            clients=clients,
            stop_grace_seconds=2,
            checkpoint_sync_seconds=0.5,
            start_runtime=False,
        )
        try:
            yield {
                "backend": backend,
                "clients": clients,
                "channel": channel,
                "sources": sources,
                "data": data,
            }
        finally:
            backend.shutdown()
            assert backend.processes.alive_pids() == []


def _wait_done(backend: LocalSageMaker, name: str, timeout: float = 240) -> dict[str, Any]:
    backend.training.wait(name, timeout)
    return backend.describe_training_job(TrainingJobName=name)


def _model_archive(s3: Any, uri: str, tmp_path: Path) -> Path:
    bucket, _, key = uri[len("s3://") :].partition("/")
    target = tmp_path / "model.tar.gz"
    s3.download_file(bucket, key, str(target))
    out = tmp_path / "model"
    with tarfile.open(target) as tar:
        tar.extractall(out, filter="data")
    return out


def test_training_job_runs_script_with_sagemaker_contract(cloud: dict[str, Any], tmp_path: Path) -> None:
    # Given a script-mode job with JSON-encoded hyperparameters and a checkpoint location
    backend, s3 = cloud["backend"], cloud["clients"]("s3")
    request = training_request(
        "fake-ok",
        sourcedir=cloud["sources"]["ok"],
        channel_uri=cloud["channel"],
        hyperparameters={"epochs": "3", "learning-rate": "0.01", "name": '"tiny"'},
        metric_definitions=METRIC_DEFINITIONS,
        checkpoint_uri=f"s3://{BUCKET}/checkpoints/fake-ok",
    )
    # When it is created and runs to the end
    arn = backend.create_training_job(**request)["TrainingJobArn"]
    described = _wait_done(backend, "fake-ok")
    # Then it completed through SageMaker's secondary statuses, with the model in S3
    assert arn == described["TrainingJobArn"]
    assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")
    statuses = [t["Status"] for t in described["SecondaryStatusTransitions"]]
    assert statuses == ["Starting", "Downloading", "Training", "Uploading", "Completed"]
    artifact = described["ModelArtifacts"]["S3ModelArtifacts"]
    assert artifact == f"s3://{BUCKET}/models/fake-ok/output/model.tar.gz"
    model = _model_archive(s3, artifact, tmp_path)
    seen = json.loads((model / "seen.json").read_text())
    # the flags the PyTorch container passes (sagemaker_* excluded, JSON strings decoded)
    assert seen["argv"] == ["--epochs", "3", "--learning-rate", "0.01", "--name", "tiny"]
    assert seen["hps"]["epochs"] == "3" and "sagemaker_program" in seen["hps"]
    assert seen["hosts"] == ["algo-1"] and seen["current"] == "algo-1" and seen["gpus"] == "0"
    expected_files = sorted(
        p.relative_to(cloud["data"]).as_posix() for p in cloud["data"].rglob("*") if p.is_file()
    )
    assert seen["files"] == expected_files
    # metrics: the last value of every MetricDefinitions regex
    final = {m["MetricName"]: m["Value"] for m in described["FinalMetricDataList"]}
    assert final["val_acc"] == pytest.approx(0.6)
    assert final["train_loss"] == pytest.approx(1 / 3, rel=1e-4)
    assert final["test_acc"] == pytest.approx(0.75)
    # output data and checkpoints went to S3; the log went to CloudWatch Logs
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="")["Contents"]}
    assert "models/fake-ok/output/output.tar.gz" in keys
    assert "checkpoints/fake-ok/state.json" in keys
    logs = cloud["clients"]("logs")
    streams = logs.describe_log_streams(logGroupName=LOG_GROUP, logStreamNamePrefix="fake-ok/algo-1-")[
        "logStreams"
    ]
    assert len(streams) == 1
    events = logs.get_log_events(logGroupName=LOG_GROUP, logStreamName=streams[0]["logStreamName"])["events"]
    assert any("test_acc=0.750000" in event["message"] for event in events)
    listed = backend.list_training_jobs(NameContains="fake-ok")["TrainingJobSummaries"]
    assert [job["TrainingJobName"] for job in listed] == ["fake-ok"]


def test_checkpoints_are_restored_from_s3_at_start(cloud: dict[str, Any], tmp_path: Path) -> None:
    # Given a checkpoint already in the job's CheckpointConfig.S3Uri (a restarted / spot job)
    backend, s3 = cloud["backend"], cloud["clients"]("s3")
    s3.put_object(Bucket=BUCKET, Key="checkpoints/resume/state.json", Body=b'{"epoch": 7}')
    request = training_request(
        "fake-resume",
        sourcedir=cloud["sources"]["ok"],
        channel_uri=cloud["channel"],
        hyperparameters={"epochs": "1", "learning-rate": "0.1", "name": "x"},
        checkpoint_uri=f"s3://{BUCKET}/checkpoints/resume",
    )
    backend.create_training_job(**request)
    described = _wait_done(backend, "fake-resume")
    assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")
    model = _model_archive(s3, described["ModelArtifacts"]["S3ModelArtifacts"], tmp_path)
    assert json.loads(json.loads((model / "seen.json").read_text())["resumed"]) == {"epoch": 7}


def test_failing_script_reports_its_error(cloud: dict[str, Any]) -> None:
    backend = cloud["backend"]
    request = training_request("fake-fail", sourcedir=cloud["sources"]["fail"], channel_uri=cloud["channel"])
    backend.create_training_job(**request)
    described = _wait_done(backend, "fake-fail")
    assert described["TrainingJobStatus"] == "Failed"
    assert described["SecondaryStatus"] == "Failed"
    reason = described["FailureReason"]
    assert reason.startswith("AlgorithmError: ExecuteUserScriptError")
    assert "ValueError: learning rate must be positive, got -1" in reason
    assert "ExitCode 1" in reason
    assert "ModelArtifacts" not in described


def test_an_isolated_job_cannot_download_its_code_from_s3(cloud: dict[str, Any]) -> None:
    """With EnableNetworkIsolation the container reaches no S3: the training toolkit's download of an
    s3:// sagemaker_submit_directory fails, as on SageMaker (only input channels are staged)."""
    backend = cloud["backend"]
    request = training_request(
        "fake-isolated", sourcedir=cloud["sources"]["ok"], channel_uri=cloud["channel"]
    )
    backend.create_training_job(**request, EnableNetworkIsolation=True)

    described = _wait_done(backend, "fake-isolated")

    assert described["TrainingJobStatus"] == "Failed"
    assert "EnableNetworkIsolation" in described["FailureReason"]
    assert cloud["sources"]["ok"] in described["FailureReason"]


def test_max_runtime_stops_a_long_job(cloud: dict[str, Any]) -> None:
    backend = cloud["backend"]
    request = training_request(
        "fake-slow", sourcedir=cloud["sources"]["slow"], channel_uri=cloud["channel"], max_runtime=3
    )
    backend.create_training_job(**request)
    described = _wait_done(backend, "fake-slow", timeout=60)
    assert described["TrainingJobStatus"] == "Stopped"
    assert described["SecondaryStatus"] == "MaxRuntimeExceeded"
    job = backend.training.get("fake-slow")
    assert job.pids and not [pid for pid in job.pids if pid in backend.processes.alive_pids()]


def test_stop_training_job(cloud: dict[str, Any]) -> None:
    backend = cloud["backend"]
    request = training_request("fake-stop", sourcedir=cloud["sources"]["slow"], channel_uri=cloud["channel"])
    backend.create_training_job(**request)
    wait_for(
        lambda: backend.describe_training_job(TrainingJobName="fake-stop")["SecondaryStatus"] == "Training",
        timeout=60,
        what="training to start",
    )
    backend.stop_training_job(TrainingJobName="fake-stop")
    described = _wait_done(backend, "fake-stop", timeout=60)
    assert described["TrainingJobStatus"] == "Stopped"
    assert [t["Status"] for t in described["SecondaryStatusTransitions"]][-2:] == ["Stopping", "Stopped"]


def test_api_errors_match_sagemaker(cloud: dict[str, Any]) -> None:
    backend = cloud["backend"]
    with pytest.raises(ClientError) as missing:
        backend.describe_training_job(TrainingJobName="no-such-job")
    assert missing.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(ClientError) as invalid:
        backend.create_training_job(TrainingJobName="bad")  # missing required members
    assert invalid.value.response["Error"]["Code"] == "ValidationException"
    assert "RoleArn" in invalid.value.response["Error"]["Message"]


def test_real_train_py_two_instances_run_ddp(cloud: dict[str, Any], tmp_path: Path) -> None:
    # Given the real training script and a 2-instance job
    backend, s3 = cloud["backend"], cloud["clients"]("s3")
    sourcedir = upload_training_code(s3, BUCKET, "code/real/sourcedir.tar.gz")
    request = training_request(
        "real-ddp",
        sourcedir=sourcedir,
        channel_uri=cloud["channel"],
        instance_count=2,
        metric_definitions=METRIC_DEFINITIONS,
        hyperparameters={
            "backbone": '"resnet18"',
            "no-pretrained": "true",
            "image-size": "32",
            "batch-size": "8",
            "epochs": "1",
            "learning-rate": "0.002",
            "workers": "0",
            "record-shards": "true",
        },
    )
    # When it runs
    backend.create_training_job(**request)
    described = _wait_done(backend, "real-ddp", timeout=300)
    # Then both hosts trained one model together: disjoint shards, identical final weights
    assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")
    job_dir = backend.training.get("real-ddp").directory
    assert job_dir is not None
    records = [
        json.loads((job_dir / host / "output" / "data" / "shards" / f"rank{rank}.json").read_text())
        for rank, host in enumerate(("algo-1", "algo-2"))
    ]
    assert [r["world_size"] for r in records] == [2, 2]
    first, second = (set(r["epochs"]["1"]) for r in records)
    assert first and second and not first & second
    assert len(first | second) == records[0]["train_size"]
    assert records[0]["weights_sha256"] == records[1]["weights_sha256"]
    final = {m["MetricName"]: m["Value"] for m in described["FinalMetricDataList"]}
    assert {"val_acc", "test_acc", "train_loss"} <= set(final)
    model = _model_archive(s3, described["ModelArtifacts"]["S3ModelArtifacts"], tmp_path)
    assert (model / "model.pth").is_file() and (model / "classes.json").is_file()
    assert (model / "code" / "inference.py").is_file()
