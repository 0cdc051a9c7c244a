"""The training pipeline executes on moto's Step Functions interpreter.

The state machine, tables and buckets come from template.yaml (DefinitionSubstitutions resolved);
ValidateDataset and EvaluateModel run their real handlers in-process; SageMaker is an in-memory
double with configurable outcomes, plugged in through `dogbreed.local.moto_shim`. Every test
asserts the execution's final state and what it wrote to the Models table (and the endpoint).
"""

from __future__ import annotations

import json
import os
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from dogbreed.data.synth import synthesize
from dogbreed.local import moto_shim
from dogbreed.local.template_resources import TemplateStack

ENDPOINT = "dogbreed-endpoint"
DATASET_ID = "synth-tiny"
PIPELINE_FUNCTIONS = {"ValidateDatasetFunction", "EvaluateModelFunction"}


def _client_error(operation: str, code: str, message: str) -> ClientError:
    return ClientError(
        {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": 400, "RequestId": "r"},
        },
        operation,
    )


class FakeSageMaker:
    """An in-memory SageMaker with configurable outcomes (implements moto_shim.SageMakerBackend)."""

    def __init__(
        self,
        *,
        test_acc: float = 0.91,
        tuning_fails: bool = False,
        training_fails: bool = False,
        update_fails: bool = False,
    ) -> None:
        self.training_fails = training_fails
        self.test_acc = test_acc
        self.tuning_fails = tuning_fails
        self.update_fails = update_fails
        self.training_jobs: dict[str, dict[str, Any]] = {}
        self.tuning_jobs: dict[str, dict[str, Any]] = {}
        self.models: dict[str, dict[str, Any]] = {}
        self.endpoint_configs: dict[str, dict[str, Any]] = {}
        self.endpoints: dict[str, dict[str, Any]] = {}
        self.calls: list[str] = []

    def _completed_job(self, name: str, request: dict[str, Any]) -> dict[str, Any]:
        return {
            "TrainingJobName": name,
            "TrainingJobArn": f"arn:aws:sagemaker:us-east-1:123456789012:training-job/{name}",
            "TrainingJobStatus": "Completed",
            "HyperParameters": request.get("HyperParameters", {}),
            "ModelArtifacts": {"S3ModelArtifacts": f"s3://bucket/models/{name}/output/model.tar.gz"},
            "FinalMetricDataList": [
                {"MetricName": "val_acc", "Value": 0.9},
                {"MetricName": "test_acc", "Value": self.test_acc},
                {"MetricName": "test_loss", "Value": 0.4},
            ],
            "ResourceConfig": request.get("ResourceConfig", {}),
        }

    def create_training_job(self, **request: Any) -> dict[str, Any]:
        self.calls.append("create_training_job")
        name = request["TrainingJobName"]
        self.training_jobs[name] = {"request": request, **self._completed_job(name, request)}
        if self.training_fails:
            self.training_jobs[name]["TrainingJobStatus"] = "Failed"
            self.training_jobs[name]["FailureReason"] = "AlgorithmError: NCCL timeout on algo-2"
        return {"TrainingJobArn": self.training_jobs[name]["TrainingJobArn"]}

    def describe_training_job(self, **request: Any) -> dict[str, Any]:
        job = self.training_jobs.get(request["TrainingJobName"])
        if job is None:
            raise _client_error("DescribeTrainingJob", "ValidationException", "Requested resource not found.")
        return {key: value for key, value in job.items() if key != "request"}

    def stop_training_job(self, **request: Any) -> dict[str, Any]:
        self.calls.append("stop_training_job")
        raise _client_error("StopTrainingJob", "ValidationException", "The job is not in progress.")

    def create_hyper_parameter_tuning_job(self, **request: Any) -> dict[str, Any]:
        self.calls.append("create_hyper_parameter_tuning_job")
        name = request["HyperParameterTuningJobName"]
        best = f"{name}-003-a1b2c3d4"
        definition = request["TrainingJobDefinition"]
        tuned = {"learning-rate": "0.0003", "batch-size": "64", "weight-decay": "0.0001", "epochs": "12"}
        self.training_jobs[best] = {
            "request": definition,
            **self._completed_job(
                best, {**definition, "HyperParameters": {**definition["StaticHyperParameters"], **tuned}}
            ),
        }
        status = "Failed" if self.tuning_fails else "Completed"
        self.tuning_jobs[name] = {
            "request": request,
            "HyperParameterTuningJobName": name,
            "HyperParameterTuningJobStatus": status,
            "TrainingJobStatusCounters": {
                "Completed": 0 if self.tuning_fails else 4,
                "Failed": 4 if self.tuning_fails else 0,
            },
            "BestTrainingJob": {
                "TrainingJobName": best,
                "TunedHyperParameters": tuned,
                "FinalHyperParameterTuningJobObjectiveMetric": {"MetricName": "val_acc", "Value": 0.9},
            },
        }
        if self.tuning_fails:
            self.tuning_jobs[name]["FailureReason"] = (
                "All training jobs failed: AlgorithmError: CUDA out of memory"
            )
        return {
            "HyperParameterTuningJobArn": f"arn:aws:sagemaker:us-east-1:123456789012:hyper-parameter-tuning-job/{name}"  # noqa: E501
        }

    def describe_hyper_parameter_tuning_job(self, **request: Any) -> dict[str, Any]:
        job = self.tuning_jobs[request["HyperParameterTuningJobName"]]
        return {key: value for key, value in job.items() if key != "request"}

    def stop_hyper_parameter_tuning_job(self, **request: Any) -> dict[str, Any]:
        self.calls.append("stop_hyper_parameter_tuning_job")
        return {}

    def create_model(self, **request: Any) -> dict[str, Any]:
        self.calls.append("create_model")
        self.models[request["ModelName"]] = request
        return {"ModelArn": f"arn:aws:sagemaker:us-east-1:123456789012:model/{request['ModelName']}"}

    def create_endpoint_config(self, **request: Any) -> dict[str, Any]:
        self.calls.append("create_endpoint_config")
        self.endpoint_configs[request["EndpointConfigName"]] = request
        name = request["EndpointConfigName"]
        return {"EndpointConfigArn": f"arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/{name}"}

    def _endpoint_arn(self, name: str) -> str:
        return f"arn:aws:sagemaker:us-east-1:123456789012:endpoint/{name}"

    def create_endpoint(self, **request: Any) -> dict[str, Any]:
        self.calls.append("create_endpoint")
        name = request["EndpointName"]
        self.endpoints[name] = {
            "EndpointConfigName": request["EndpointConfigName"],
            "EndpointStatus": "InService",
        }
        return {"EndpointArn": self._endpoint_arn(name)}

    def update_endpoint(self, **request: Any) -> dict[str, Any]:
        self.calls.append("update_endpoint")
        endpoint = self.endpoints[request["EndpointName"]]
        if self.update_fails:  # SageMaker rolls back: the previous config keeps serving
            endpoint["FailureReason"] = (
                "The primary container for production variant AllTraffic did not pass the ping health check."
            )
        else:
            endpoint["EndpointConfigName"] = request["EndpointConfigName"]
        return {"EndpointArn": self._endpoint_arn(request["EndpointName"])}

    def describe_endpoint(self, **request: Any) -> dict[str, Any]:
        name = request["EndpointName"]
        if name not in self.endpoints:
            raise _client_error(
                "DescribeEndpoint", "ValidationException", f'Could not find endpoint "{name}".'
            )
        return {"EndpointName": name, "EndpointArn": self._endpoint_arn(name), **self.endpoints[name]}


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthesize(
        tmp_path_factory.mktemp("data") / DATASET_ID, classes=2, per_class=4, size=32, dataset_id=DATASET_ID
    )


class Pipeline:
    def __init__(
        self, stack: TemplateStack, session: boto3.Session, arn: str, backend: FakeSageMaker
    ) -> None:
        self.stack = stack
        self.session = session
        self.arn = arn
        self.backend = backend
        self.data_bucket = stack.physical_name("DataBucket")
        self.models_table = session.resource("dynamodb").Table(stack.physical_name("ModelsTable"))

    def upload(self, root: Path, dataset_id: str = DATASET_ID, *, skip: str | None = None) -> None:
        s3 = self.session.client("s3")
        for path in sorted(root.rglob("*")):
            relative = path.relative_to(root).as_posix()
            if path.is_file() and relative != skip:
                s3.put_object(
                    Bucket=self.data_bucket, Key=f"datasets/{dataset_id}/{relative}", Body=path.read_bytes()
                )

    def run(self, dataset_id: str = DATASET_ID) -> dict[str, Any]:
        """Start the way EventBridge does (the S3 Object Created event) and wait for the end."""
        event = {
            "source": "aws.s3",
            "detail-type": "Object Created",
            "detail": {
                "bucket": {"name": self.data_bucket},
                "object": {"key": f"datasets/{dataset_id}/manifest.json"},
            },
        }
        sfn = self.session.client("stepfunctions")
        execution_arn = sfn.start_execution(stateMachineArn=self.arn, input=json.dumps(event))["executionArn"]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            described = sfn.describe_execution(executionArn=execution_arn)
            if described["status"] != "RUNNING":
                return described
            time.sleep(0.05)
        raise AssertionError("the execution did not finish within 60 s")

    def model_items(self) -> dict[str, dict[str, Any]]:
        return {item["model_version"]: item for item in self.models_table.scan()["Items"]}

    def seed_deployed(self, version: str, test_acc: str) -> None:
        """A previous run's deployed model, its config serving on the endpoint."""
        self.models_table.put_item(
            Item={"model_version": version, "status": "deployed", "test_acc": Decimal(test_acc)}
        )
        self.models_table.put_item(
            Item={
                "model_version": "DEPLOYED",
                "deployed_version": version,
                "test_acc": Decimal(test_acc),
                "endpoint_config": version,
            }
        )
        self.backend.endpoints[ENDPOINT] = {"EndpointConfigName": version, "EndpointStatus": "InService"}


def _pipeline(backend: FakeSageMaker, **parameters: str) -> Any:
    stack = TemplateStack.load(parameters={"EndpointPollSeconds": "0", **parameters})
    session = boto3.Session(region_name="us-east-1")
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        functions = [
            moto_shim.LambdaFunction(
                name=f["name"],
                arn=f["arn"],
                code_dir=f["code_dir"],
                handler=f["handler"],
                environment=f["environment"],
            )
            for f in stack.lambda_functions()
            if f["logical_id"] in PIPELINE_FUNCTIONS
        ]
        with moto_shim.installed(backend, lambdas=functions):
            created = stack.deploy(session, only={"DataBucket", "ModelsTable", "TrainingPipeline"})
            yield Pipeline(stack, session, created.state_machine_arns["TrainingPipeline"], backend)


@pytest.fixture
def make_pipeline(aws_env: None) -> Any:
    generators = []

    def make(backend: FakeSageMaker, **parameters: str) -> Pipeline:
        generator = _pipeline(backend, **parameters)
        generators.append(generator)
        return next(generator)

    yield make
    for generator in reversed(generators):
        generator.close()


def test_happy_path_creates_the_endpoint_scales_it_and_records_the_model(
    make_pipeline: Any, tiny_dataset: Path
) -> None:
    # Given a valid dataset and no endpoint yet
    backend = FakeSageMaker(test_acc=0.91)
    pipeline = make_pipeline(backend)
    pipeline.upload(tiny_dataset)

    # When its manifest event starts the pipeline
    execution = pipeline.run()

    # Then it succeeds, deploying a new endpoint with the final (distributed) model
    assert execution["status"] == "SUCCEEDED", execution.get("cause")
    output = json.loads(execution["output"])
    assert output["outcome"] == "deployed"
    assert output["endpoint_action"] == "create"
    assert output["previous_version"] == "none"
    version = output["model_version"]
    assert version.startswith("dogbreed-") and len(f"hpo-{version[9:]}") <= 32
    assert backend.endpoints[ENDPOINT]["EndpointConfigName"] == version
    final_job = backend.training_jobs[output["training_job"]]["request"]
    assert final_job["ResourceConfig"]["InstanceCount"] == 2
    hyperparameters = final_job["HyperParameters"]
    assert hyperparameters["sagemaker_torch_distributed_enabled"] == "true"
    assert hyperparameters["sagemaker_program"] == "train.py"
    assert hyperparameters["learning-rate"] == "0.0003"  # the best tuning job's value
    tuning = next(iter(backend.tuning_jobs.values()))["request"]
    assert tuning["HyperParameterTuningJobConfig"]["Strategy"] == "Bayesian"
    assert tuning["HyperParameterTuningJobConfig"]["ResourceLimits"] == {
        "MaxNumberOfTrainingJobs": 12,
        "MaxParallelTrainingJobs": 3,
    }
    assert tuning["TrainingJobDefinition"]["EnableManagedSpotTraining"] is True
    assert "MaxWaitTimeInSeconds" in tuning["TrainingJobDefinition"]["StoppingCondition"]
    # ... registered target tracking on the variant
    autoscaling = pipeline.session.client("application-autoscaling")
    target = autoscaling.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"][0]
    assert target["ResourceId"] == f"endpoint/{ENDPOINT}/variant/AllTraffic"
    assert (target["MinCapacity"], target["MaxCapacity"]) == (1, 4)
    policy = autoscaling.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"][0]
    tracking = policy["TargetTrackingScalingPolicyConfiguration"]
    assert (
        tracking["PredefinedMetricSpecification"]["PredefinedMetricType"]
        == "SageMakerVariantInvocationsPerInstance"
    )
    assert (tracking["TargetValue"], tracking["ScaleInCooldown"], tracking["ScaleOutCooldown"]) == (
        600,
        300,
        60,
    )
    # ... and recorded the model as deployed, with the pointer item naming it
    items = pipeline.model_items()
    record = items[version]
    assert record["status"] == "deployed"
    assert float(record["test_acc"]) == pytest.approx(0.91)
    assert record["dataset_id"] == DATASET_ID
    assert json.loads(record["metrics"])["test_acc"] == pytest.approx(0.91)
    assert json.loads(record["hyperparameters"])["batch-size"] == "64"
    assert items["DEPLOYED"]["deployed_version"] == version


def test_happy_path_updates_the_existing_endpoint_and_retires_the_previous_model(
    make_pipeline: Any, tiny_dataset: Path
) -> None:
    # Given an endpoint serving an older model with lower accuracy
    backend = FakeSageMaker(test_acc=0.9)
    pipeline = make_pipeline(backend)
    pipeline.seed_deployed("dogbreed-20260101-000000-aaaa", "0.85")
    pipeline.upload(tiny_dataset)

    # When the pipeline runs
    execution = pipeline.run()

    # Then it updates the endpoint in place (blue/green) and retires the previous model
    assert execution["status"] == "SUCCEEDED", execution.get("cause")
    output = json.loads(execution["output"])
    assert (output["outcome"], output["endpoint_action"]) == ("deployed", "update")
    assert "update_endpoint" in backend.calls and "create_endpoint" not in backend.calls
    assert backend.endpoints[ENDPOINT]["EndpointConfigName"] == output["model_version"]
    items = pipeline.model_items()
    assert items["dogbreed-20260101-000000-aaaa"]["status"] == "retired"
    assert items["dogbreed-20260101-000000-aaaa"]["replaced_by"] == output["model_version"]
    assert items[output["model_version"]]["status"] == "deployed"
    assert items["DEPLOYED"]["deployed_version"] == output["model_version"]


def test_tuning_failure_stops_the_job_records_the_failure_and_fails(
    make_pipeline: Any, tiny_dataset: Path
) -> None:
    backend = FakeSageMaker(tuning_fails=True)
    pipeline = make_pipeline(backend)
    pipeline.upload(tiny_dataset)

    execution = pipeline.run()

    assert execution["status"] == "FAILED"
    assert execution["error"] == "TuningFailed"
    assert "CUDA out of memory" in execution["cause"]
    assert "stop_hyper_parameter_tuning_job" in backend.calls
    assert "create_training_job" not in backend.calls and not backend.endpoints
    (record,) = [item for key, item in pipeline.model_items().items() if key != "DEPLOYED"]
    assert (record["status"], record["failure_stage"], record["failure_error"]) == (
        "failed",
        "Tune",
        "States.TaskFailed",
    )
    assert "CUDA out of memory" in record["failure_cause"]


def test_gate_rejects_a_model_below_the_deployed_one_and_leaves_the_endpoint(
    make_pipeline: Any, tiny_dataset: Path
) -> None:
    # Given a deployed model at 0.93 and a new one at 0.88 (above the 0.80 threshold)
    backend = FakeSageMaker(test_acc=0.88)
    pipeline = make_pipeline(backend)
    pipeline.seed_deployed("dogbreed-20260101-000000-bbbb", "0.93")
    pipeline.upload(tiny_dataset)

    execution = pipeline.run()

    # Then the run succeeds without deploying, and the rejection records both numbers
    assert execution["status"] == "SUCCEEDED", execution.get("cause")
    output = json.loads(execution["output"])
    assert output["outcome"] == "rejected"
    assert (output["test_acc"], output["deployed_test_acc"]) == (pytest.approx(0.88), pytest.approx(0.93))
    assert backend.endpoints[ENDPOINT]["EndpointConfigName"] == "dogbreed-20260101-000000-bbbb"
    assert not {"create_model", "create_endpoint", "update_endpoint"} & set(backend.calls)
    items = pipeline.model_items()
    record = items[output["model_version"]]
    assert record["status"] == "rejected"
    assert float(record["test_acc"]) == pytest.approx(0.88)
    assert float(record["deployed_test_acc_at_gate"]) == pytest.approx(0.93)
    assert float(record["accuracy_threshold"]) == pytest.approx(0.80)
    assert items["dogbreed-20260101-000000-bbbb"]["status"] == "deployed"
    assert items["DEPLOYED"]["deployed_version"] == "dogbreed-20260101-000000-bbbb"


def test_gate_rejects_a_first_model_below_the_threshold(make_pipeline: Any, tiny_dataset: Path) -> None:
    backend = FakeSageMaker(test_acc=0.5)
    pipeline = make_pipeline(backend)
    pipeline.upload(tiny_dataset)

    execution = pipeline.run()

    assert execution["status"] == "SUCCEEDED"
    assert json.loads(execution["output"])["outcome"] == "rejected"
    assert not backend.endpoints and "DEPLOYED" not in pipeline.model_items()


def test_endpoint_update_failure_keeps_the_previous_config_serving(
    make_pipeline: Any, tiny_dataset: Path
) -> None:
    backend = FakeSageMaker(test_acc=0.95, update_fails=True)
    pipeline = make_pipeline(backend)
    pipeline.seed_deployed("dogbreed-20260101-000000-cccc", "0.85")
    pipeline.upload(tiny_dataset)

    execution = pipeline.run()

    assert execution["status"] == "FAILED"
    assert execution["error"] == "EndpointUpdateFailed"
    assert "ping health check" in execution["cause"]
    assert backend.endpoints[ENDPOINT]["EndpointConfigName"] == "dogbreed-20260101-000000-cccc"
    items = pipeline.model_items()
    assert items["DEPLOYED"]["deployed_version"] == "dogbreed-20260101-000000-cccc"
    assert items["dogbreed-20260101-000000-cccc"]["status"] == "deployed"
    (record,) = [
        item for key, item in items.items() if key not in ("DEPLOYED", "dogbreed-20260101-000000-cccc")
    ]
    assert (record["status"], record["failure_stage"], record["failure_error"]) == (
        "failed",
        "Deploy",
        "EndpointUpdateFailed",
    )
    assert "ping health check" in record["failure_cause"]


def test_invalid_dataset_fails_before_any_compute(make_pipeline: Any, tiny_dataset: Path) -> None:
    # Given a dataset whose test split was not uploaded
    backend = FakeSageMaker()
    pipeline = make_pipeline(backend)
    pipeline.upload(tiny_dataset)
    s3 = pipeline.session.client("s3")
    for obj in s3.list_objects_v2(Bucket=pipeline.data_bucket, Prefix=f"datasets/{DATASET_ID}/test/")[
        "Contents"
    ]:
        s3.delete_object(Bucket=pipeline.data_bucket, Key=obj["Key"])

    execution = pipeline.run()

    assert execution["status"] == "FAILED"
    assert execution["error"] == "DatasetInvalid"
    assert "missing split" in execution["cause"] or "test/" in execution["cause"]
    assert backend.calls == []
    (record,) = pipeline.model_items().values()
    assert (record["status"], record["failure_stage"], record["dataset_id"]) == (
        "failed",
        "ValidateDataset",
        DATASET_ID,
    )


def test_reusing_the_best_tuning_artifact_skips_the_final_job(make_pipeline: Any, tiny_dataset: Path) -> None:
    backend = FakeSageMaker(test_acc=0.9)
    pipeline = make_pipeline(backend, ReuseTuningArtifact="true", UseSpotTraining="false")
    pipeline.upload(tiny_dataset)

    execution = pipeline.run()

    assert execution["status"] == "SUCCEEDED", execution.get("cause")
    output = json.loads(execution["output"])
    assert output["training_job"].startswith("hpo-")
    assert "create_training_job" not in backend.calls
    stopping = next(iter(backend.tuning_jobs.values()))["request"]["TrainingJobDefinition"][
        "StoppingCondition"
    ]
    assert "MaxWaitTimeInSeconds" not in stopping
    assert os.environ.get("DATA_BUCKET") is None  # handler environments do not leak


def test_final_training_failure_stops_the_job_and_records_it(make_pipeline: Any, tiny_dataset: Path) -> None:
    backend = FakeSageMaker(training_fails=True)
    pipeline = make_pipeline(backend)
    pipeline.upload(tiny_dataset)

    execution = pipeline.run()

    assert execution["status"] == "FAILED"
    assert execution["error"] == "TrainingFailed"
    assert "NCCL timeout" in execution["cause"]
    assert "stop_training_job" in backend.calls and not backend.models and not backend.endpoints
    (record,) = pipeline.model_items().values()
    assert (record["status"], record["failure_stage"], record["failure_error"]) == (
        "failed",
        "Train",
        "States.TaskFailed",
    )


VPC_PARAMETERS = {
    "VpcSubnetIds": "subnet-0a1b,subnet-2c3d",
    "VpcSecurityGroupIds": "sg-0e4f",
    "EnableTrainingNetworkIsolation": "true",
    "EnableInterContainerTrafficEncryption": "true",
}


@pytest.mark.parametrize("in_vpc", [False, True], ids=["defaults", "vpc-and-isolation"])
def test_jobs_and_model_get_the_vpc_and_isolation_settings_only_when_given(
    make_pipeline: Any, tiny_dataset: Path, in_vpc: bool
) -> None:
    # Given the VPC and training isolation parameters, or the (dev) defaults
    backend = FakeSageMaker(test_acc=0.91)
    pipeline = make_pipeline(backend, **(VPC_PARAMETERS if in_vpc else {}))
    pipeline.upload(tiny_dataset)

    # When the pipeline runs to a deployment
    execution = pipeline.run()

    # Then the tuning trials, the final job and the model carry exactly those settings
    assert execution["status"] == "SUCCEEDED", execution.get("cause")
    output = json.loads(execution["output"])
    trials = next(iter(backend.tuning_jobs.values()))["request"]["TrainingJobDefinition"]
    final_job = backend.training_jobs[output["training_job"]]["request"]
    model = backend.models[output["model_version"]]
    vpc = {"Subnets": ["subnet-0a1b", "subnet-2c3d"], "SecurityGroupIds": ["sg-0e4f"]}
    for request in (trials, final_job, model):
        assert request.get("VpcConfig") == (vpc if in_vpc else None)
    for request in (trials, final_job):
        assert request["EnableNetworkIsolation"] is in_vpc
        assert request["EnableInterContainerTrafficEncryption"] is in_vpc
