"""Injected faults in the local SageMaker backend against a real moto server: a training job whose
processes are killed mid-run ends Failed with the fault in its FailureReason, and no process is left."""

from __future__ import annotations

from pathlib import Path

import pytest

from dogbreed.local.cloud.faults import FaultRegistry, build_fault
from dogbreed.local.sagemaker import LocalSageMaker
from tests.integration.local_sagemaker_support import (
    BUCKET,
    client_factory,
    moto_server,
    training_request,
    upload_sourcedir,
    upload_tree,
)

pytestmark = pytest.mark.slow

# Runs until killed: only the fault can end it within the test's timeout.
ENDLESS_TRAINING = (
    "import time\nwhile True:\n    print('epoch=1 val_acc=0.1', flush=True)\n    time.sleep(0.2)\n"
)


def test_training_fault_kills_the_running_job_and_fails_it_with_a_reason(tmp_path: Path) -> None:
    source, data = tmp_path / "source", tmp_path / "data"
    source.mkdir()
    (source / "train.py").write_text(ENDLESS_TRAINING)
    data.mkdir()
    (data / "sample.txt").write_text("x")
    with moto_server() as url:
        clients = client_factory(url)
        clients("s3").create_bucket(Bucket=BUCKET)
        sourcedir = upload_sourcedir(clients("s3"), source, BUCKET, "code/sourcedir.tar.gz")
        channel = upload_tree(clients("s3"), data, BUCKET, "datasets/d1")
        backend = LocalSageMaker(tmp_path / "state", clients=clients, start_runtime=False, publish_logs=False)
        backend.training.faults = FaultRegistry()
        fault = backend.training.faults.add(
            build_fault({"kind": "training", "resource": "hpo-", "delay_seconds": 1.0})
        )
        try:
            # When a matching job starts training
            backend.create_training_job(
                **training_request("hpo-run-001-abc", sourcedir=sourcedir, channel_uri=channel)
            )
            backend.training.wait("hpo-run-001-abc", timeout=120)
            described = backend.describe_training_job(TrainingJobName="hpo-run-001-abc")
            alive = backend.processes.alive_pids()
        finally:
            backend.shutdown()

    # Then it failed with the fault named in its reason, and its processes are gone
    assert described["TrainingJobStatus"] == "Failed"
    assert described["FailureReason"].startswith("InternalServerError: the training instances were lost")
    assert fault.id in described["FailureReason"]
    assert (fault.hits, alive) == (1, [])
