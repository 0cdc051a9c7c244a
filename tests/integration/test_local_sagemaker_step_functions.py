"""The local SageMaker backend behind the Step Functions shim: a `createTrainingJob.sync` task on
moto's interpreter runs a real training job and returns its DescribeTrainingJob output."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from dogbreed.local import moto_shim, sfn_task_services
from dogbreed.local.sagemaker import LocalSageMaker
from tests.integration.local_sagemaker_support import REGION, ROLE, wait_for

pytestmark = pytest.mark.slow

SCRIPT = (
    "import os, pathlib\n"
    "print('epoch=1 train_loss=0.9 val_loss=0.8 val_acc=0.5')\n"
    "pathlib.Path(os.environ['SM_MODEL_DIR'], 'model.pth').write_text('weights')\n"
)


def _definition(source: Path) -> dict[str, object]:
    return {
        "StartAt": "Train",
        "States": {
            "Train": {
                "Type": "Task",
                "Resource": "arn:aws:states:::sagemaker:createTrainingJob.sync",
                "Parameters": {
                    "TrainingJobName.$": "$.name",
                    "AlgorithmSpecification": {
                        "TrainingImage": "pytorch-training",
                        "TrainingInputMode": "File",
                        "MetricDefinitions": [{"Name": "val_acc", "Regex": r"val_acc=([0-9.]+)"}],
                    },
                    "RoleArn": ROLE,
                    "HyperParameters": {
                        "sagemaker_program": "train.py",
                        "sagemaker_submit_directory": f"file://{source}",
                    },
                    "InputDataConfig": [
                        {
                            "ChannelName": "training",
                            "DataSource": {
                                "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://sfn-data/set"}
                            },
                        }
                    ],
                    "OutputDataConfig": {"S3OutputPath": "s3://sfn-data/models"},
                    "ResourceConfig": {
                        "InstanceType": "ml.m5.large",
                        "InstanceCount": 1,
                        "VolumeSizeInGB": 1,
                    },
                    "StoppingCondition": {"MaxRuntimeInSeconds": 120},
                },
                "End": True,
            }
        },
    }


def test_sync_training_task_runs_on_the_local_backend(tmp_path: Path) -> None:
    source = tmp_path / "source"
    source.mkdir()
    (source / "train.py").write_text(SCRIPT)
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket="sfn-data")
        s3.put_object(Bucket="sfn-data", Key="set/train/a.txt", Body=b"1")
        backend = LocalSageMaker(
            tmp_path / "state",
            clients=lambda service: boto3.client(service, region_name=REGION),
            start_runtime=False,
        )
        assert isinstance(backend, sfn_task_services.SageMakerBackend)
        sfn = boto3.client("stepfunctions", region_name=REGION)
        machine = sfn.create_state_machine(
            name="train", definition=json.dumps(_definition(source)), roleArn=ROLE
        )
        try:
            with moto_shim.installed(backend):
                execution = sfn.start_execution(
                    stateMachineArn=machine["stateMachineArn"], input=json.dumps({"name": "sfn-job"})
                )["executionArn"]
                described = wait_for(
                    lambda: (
                        (d := sfn.describe_execution(executionArn=execution))["status"] != "RUNNING" and d
                    ),
                    timeout=120,
                    what="the execution",
                )
        finally:
            backend.shutdown()
        assert described["status"] == "SUCCEEDED", described.get("cause")
        output = json.loads(described["output"])
        assert output["TrainingJobStatus"] == "Completed"
        assert (
            output["ModelArtifacts"]["S3ModelArtifacts"] == "s3://sfn-data/models/sfn-job/output/model.tar.gz"
        )
        assert (
            s3.head_object(Bucket="sfn-data", Key="models/sfn-job/output/model.tar.gz")["ContentLength"] > 0
        )
        assert {m["MetricName"]: m["Value"] for m in output["FinalMetricDataList"]} == {"val_acc": 0.5}
        assert backend.processes.alive_pids() == []
