"""An in-memory SageMaker with scripted outcomes, for running the real state machine on moto's
interpreter without processes (implements the backend interface
`dogbreed.local.sfn_task_services.SageMakerBackend`, plugged in by `dogbreed.local.moto_shim`).

Every request is validated against botocore's input shape first (a misspelled field fails here as
the real API would refuse it), errors are `ClientError`s with SageMaker's codes, and the responses
carry the fields the pipeline reads. What happens is chosen per instance: the trials' and the final
job's metrics, failures, an endpoint that fails, a rollback."""

from __future__ import annotations

import copy
import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from dogbreed.aws import service_models

REGION = "us-east-1"
ACCOUNT = "123456789012"


def client_error(operation: str, code: str, message: str) -> ClientError:
    return ClientError(
        {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": 400, "RequestId": "r"},
        },
        operation,
    )


def arn(kind: str, name: str) -> str:
    return f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:{kind}/{name.lower()}"


@dataclass
class Outcomes:
    """What the scripted SageMaker does. Accuracies are test_acc values."""

    trial_test_acc: float | None = 0.91
    final_test_acc: float | None = 0.91
    tuning_fails: bool = False
    no_completed_trial: bool = False
    training_fails: bool = False
    endpoint_fails: bool = False
    update_rolls_back: bool = False
    endpoint_creating_polls: int = 0
    endpoint_updating_polls: int = 0
    create_model_error: str | None = None


@dataclass
class FakeSageMaker:
    outcomes: Outcomes = field(default_factory=Outcomes)
    training_jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    tuning_jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    endpoint_configs: dict[str, dict[str, Any]] = field(default_factory=dict)
    endpoints: dict[str, dict[str, Any]] = field(default_factory=dict)
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    packages: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)

    def _call(self, operation: str, request: dict[str, Any]) -> None:
        problems = service_models.request_problems("sagemaker", operation, request)
        if problems:
            raise client_error(operation, "ValidationException", problems)
        self.calls.append(operation)

    # --- training and tuning ---------------------------------------------------------------------
    def _job(
        self, name: str, request: dict[str, Any], test_acc: float | None, *, failed: bool = False
    ) -> dict[str, Any]:
        metrics = [{"MetricName": "val_acc", "Value": 0.9}, {"MetricName": "test_loss", "Value": 0.4}]
        if test_acc is not None:
            metrics.append({"MetricName": "test_acc", "Value": test_acc})
        job = {
            "TrainingJobName": name,
            "TrainingJobArn": arn("training-job", name),
            "TrainingJobStatus": "Failed" if failed else "Completed",
            "HyperParameters": request.get("HyperParameters", request.get("StaticHyperParameters", {})),
            "ModelArtifacts": {"S3ModelArtifacts": f"s3://bucket/models/{name}/output/model.tar.gz"},
            "FinalMetricDataList": metrics,
            "ResourceConfig": request.get("ResourceConfig", {}),
            "request": request,
        }
        if failed:
            job["FailureReason"] = "AlgorithmError: NCCL timeout on algo-2"
        return job

    def create_training_job(self, **request: Any) -> dict[str, Any]:
        self._call("CreateTrainingJob", request)
        name = request["TrainingJobName"]
        if name in self.training_jobs:
            raise client_error("CreateTrainingJob", "ResourceInUse", f"Training job {name} already exists")
        self.training_jobs[name] = self._job(
            name, request, self.outcomes.final_test_acc, failed=self.outcomes.training_fails
        )
        return {"TrainingJobArn": arn("training-job", name)}

    def describe_training_job(self, **request: Any) -> dict[str, Any]:
        self._call("DescribeTrainingJob", request)
        job = self.training_jobs.get(request["TrainingJobName"])
        if job is None:
            raise client_error("DescribeTrainingJob", "ValidationException", "Requested resource not found.")
        return {key: value for key, value in job.items() if key != "request"}

    def stop_training_job(self, **request: Any) -> dict[str, Any]:
        self._call("StopTrainingJob", request)
        raise client_error("StopTrainingJob", "ValidationException", "The job is not in progress.")

    def create_hyper_parameter_tuning_job(self, **request: Any) -> dict[str, Any]:
        self._call("CreateHyperParameterTuningJob", request)
        name = request["HyperParameterTuningJobName"]
        definition = request["TrainingJobDefinition"]
        tuned = {"learning-rate": "0.0003", "batch-size": "64", "weight-decay": "0.0001", "epochs": "12"}
        trials = []
        if not self.outcomes.no_completed_trial and not self.outcomes.tuning_fails:
            best = f"{name}-003-a1b2c3d4"
            hyperparameters = {**definition["StaticHyperParameters"], **tuned}
            self.training_jobs[best] = self._job(
                best, {**definition, "HyperParameters": hyperparameters}, self.outcomes.trial_test_acc
            )
            trials.append(
                {
                    "TrainingJobName": best,
                    "TrainingJobArn": arn("training-job", best),
                    "TrainingJobStatus": "Completed",
                    "CreationTime": dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
                    "TunedHyperParameters": tuned,
                    "FinalHyperParameterTuningJobObjectiveMetric": {"MetricName": "val_acc", "Value": 0.9},
                }
            )
        self.tuning_jobs[name] = {
            "request": request,
            "HyperParameterTuningJobName": name,
            "HyperParameterTuningJobStatus": "Failed" if self.outcomes.tuning_fails else "Completed",
            "TrainingJobStatusCounters": {"Completed": len(trials), "Stopped": 0 if trials else 4},
            "trials": trials,
        }
        if self.outcomes.tuning_fails:
            self.tuning_jobs[name]["FailureReason"] = (
                "All training jobs failed: AlgorithmError: CUDA out of memory"
            )
        return {"HyperParameterTuningJobArn": arn("hyper-parameter-tuning-job", name)}

    def describe_hyper_parameter_tuning_job(self, **request: Any) -> dict[str, Any]:
        self._call("DescribeHyperParameterTuningJob", request)
        job = self.tuning_jobs[request["HyperParameterTuningJobName"]]
        return {key: value for key, value in job.items() if key not in ("request", "trials")}

    def list_training_jobs_for_hyper_parameter_tuning_job(self, **request: Any) -> dict[str, Any]:
        self._call("ListTrainingJobsForHyperParameterTuningJob", request)
        trials = self.tuning_jobs[request["HyperParameterTuningJobName"]]["trials"]
        if "StatusEquals" in request:
            trials = [trial for trial in trials if trial["TrainingJobStatus"] == request["StatusEquals"]]
        return {"TrainingJobSummaries": copy.deepcopy(trials[: request.get("MaxResults", 100)])}

    def stop_hyper_parameter_tuning_job(self, **request: Any) -> dict[str, Any]:
        self._call("StopHyperParameterTuningJob", request)
        return {}

    # --- the model registry ----------------------------------------------------------------------
    def create_model_package_group(self, **request: Any) -> dict[str, Any]:
        self._call("CreateModelPackageGroup", request)
        name = request["ModelPackageGroupName"]
        self.groups[name] = {"versions": 0, **request}
        return {"ModelPackageGroupArn": arn("model-package-group", name)}

    def create_model_package(self, **request: Any) -> dict[str, Any]:
        self._call("CreateModelPackage", request)
        group = self.groups.get(request["ModelPackageGroupName"])
        if group is None:
            raise client_error(
                "CreateModelPackage", "ValidationException", "Model Package Group does not exist."
            )
        if "Tags" in request:  # the API reference: a versioned package takes its group's tags
            raise client_error(
                "CreateModelPackage", "ValidationException", "A versioned model package takes no Tags."
            )
        group["versions"] += 1
        package_arn = arn("model-package", f"{request['ModelPackageGroupName']}/{group['versions']}")
        self.packages[package_arn] = {
            **request,
            "ModelPackageArn": package_arn,
            "ModelPackageVersion": group["versions"],
            "ModelPackageStatus": "Completed",
        }
        return {"ModelPackageArn": package_arn}

    def describe_model_package(self, **request: Any) -> dict[str, Any]:
        self._call("DescribeModelPackage", request)
        package = self.packages.get(request["ModelPackageName"])
        if package is None:
            raise client_error("DescribeModelPackage", "ValidationException", "ModelPackage does not exist.")
        return {key: value for key, value in package.items() if key != "Tags"}

    def update_model_package(self, **request: Any) -> dict[str, Any]:
        self._call("UpdateModelPackage", request)
        package = self.packages[request["ModelPackageArn"]]
        package.update({key: value for key, value in request.items() if key != "ModelPackageArn"})
        return {"ModelPackageArn": request["ModelPackageArn"]}

    def register_serving_package(
        self, endpoint: str, model_version: str, test_acc: float, group: str, instance_type: str | None
    ) -> str:
        """What an earlier run left: an approved package, its model and config serving on `endpoint`
        (on `instance_type`, or serverless when it is None)."""
        group_record = self.groups[group]
        group_record["versions"] += 1
        package_arn = arn("model-package", f"{group}/{group_record['versions']}")
        self.packages[package_arn] = {
            "ModelPackageArn": package_arn,
            "ModelApprovalStatus": "Approved",
            "CustomerMetadataProperties": {"model_version": model_version, "test_acc": str(test_acc)},
        }
        self.models[model_version] = {
            "ModelName": model_version,
            "PrimaryContainer": {"ModelPackageName": package_arn},
        }
        capacity: dict[str, Any] = (
            {"InstanceType": instance_type, "InitialInstanceCount": 1}
            if instance_type
            else {"ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 5}}
        )
        self.endpoint_configs[model_version] = {
            "ProductionVariants": [{"VariantName": "AllTraffic", "ModelName": model_version, **capacity}]
        }
        self.endpoints[endpoint] = {"EndpointConfigName": model_version, "EndpointStatus": "InService"}
        return package_arn

    # --- models, configs, endpoints --------------------------------------------------------------
    def create_model(self, **request: Any) -> dict[str, Any]:
        self._call("CreateModel", request)
        if self.outcomes.create_model_error:
            raise client_error("CreateModel", self.outcomes.create_model_error, "Cannot create model.")
        self.models[request["ModelName"]] = request
        return {"ModelArn": arn("model", request["ModelName"])}

    def describe_model(self, **request: Any) -> dict[str, Any]:
        self._call("DescribeModel", request)
        model = self.models.get(request["ModelName"])
        if model is None:
            raise client_error("DescribeModel", "ValidationException", "Could not find model.")
        return copy.deepcopy(model)

    def create_endpoint_config(self, **request: Any) -> dict[str, Any]:
        self._call("CreateEndpointConfig", request)
        for variant in request["ProductionVariants"]:  # instances or serverless, never both or neither
            if ("InstanceType" in variant) == ("ServerlessConfig" in variant):
                raise client_error(
                    "CreateEndpointConfig",
                    "ValidationException",
                    "A production variant needs either InstanceType or ServerlessConfig.",
                )
        self.endpoint_configs[request["EndpointConfigName"]] = request
        return {"EndpointConfigArn": arn("endpoint-config", request["EndpointConfigName"])}

    def describe_endpoint_config(self, **request: Any) -> dict[str, Any]:
        self._call("DescribeEndpointConfig", request)
        config = self.endpoint_configs.get(request["EndpointConfigName"])
        if config is None:
            raise client_error(
                "DescribeEndpointConfig", "ValidationException", "Could not find endpoint configuration."
            )
        return copy.deepcopy(config)

    def create_endpoint(self, **request: Any) -> dict[str, Any]:
        self._call("CreateEndpoint", request)
        status = "Creating" if self.outcomes.endpoint_creating_polls else "InService"
        if self.outcomes.endpoint_fails:
            status = "Failed"
        self.endpoints[request["EndpointName"]] = {
            "EndpointConfigName": request["EndpointConfigName"],
            "EndpointStatus": status,
            "polls_left": self.outcomes.endpoint_creating_polls,
            "request": request,
        }
        if self.outcomes.endpoint_fails:
            self.endpoints[request["EndpointName"]]["FailureReason"] = (
                "The primary container did not pass the ping health check."
            )
        return {"EndpointArn": arn("endpoint", request["EndpointName"])}

    def update_endpoint(self, **request: Any) -> dict[str, Any]:
        self._call("UpdateEndpoint", request)
        endpoint = self.endpoints[request["EndpointName"]]
        serving = self.endpoint_configs[endpoint["EndpointConfigName"]]["ProductionVariants"][0]
        new = self.endpoint_configs[request["EndpointConfigName"]]["ProductionVariants"][0]
        if "InstanceType" in serving and "ServerlessConfig" in new:  # "Serverless endpoint operations"
            raise client_error(
                "UpdateEndpoint",
                "ValidationException",
                "You cannot update an instance-based endpoint to a serverless endpoint.",
            )
        endpoint["update_request"] = request
        if self.outcomes.update_rolls_back:  # the rollback alarm fired: the old config keeps serving
            endpoint["FailureReason"] = "Rolled back: alarm fired during the canary bake"
        else:
            endpoint["EndpointConfigName"] = request["EndpointConfigName"]
        if self.outcomes.endpoint_updating_polls:  # the traffic shift and its bakes take a while
            endpoint["EndpointStatus"] = "Updating"
            endpoint["polls_left"] = self.outcomes.endpoint_updating_polls
        return {"EndpointArn": arn("endpoint", request["EndpointName"])}

    def describe_endpoint(self, **request: Any) -> dict[str, Any]:
        self._call("DescribeEndpoint", request)
        name = request["EndpointName"]
        if name not in self.endpoints:
            raise client_error(
                "DescribeEndpoint", "ValidationException", f'Could not find endpoint "{name}".'
            )
        endpoint = self.endpoints[name]
        if endpoint.get("polls_left"):
            endpoint["polls_left"] -= 1
            if not endpoint["polls_left"]:
                endpoint["EndpointStatus"] = "InService"
        shown = {
            key: value
            for key, value in endpoint.items()
            if key not in ("request", "update_request", "polls_left")
        }
        return {"EndpointName": name, "EndpointArn": arn("endpoint", name), **shown}

    def list_endpoints(self, **request: Any) -> dict[str, Any]:
        self._call("ListEndpoints", request)
        contains = request.get("NameContains", "")
        return {
            "Endpoints": [
                {
                    "EndpointName": name,
                    "EndpointArn": arn("endpoint", name),
                    "EndpointStatus": endpoint["EndpointStatus"],
                    "CreationTime": dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
                    "LastModifiedTime": dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
                }
                for name, endpoint in self.endpoints.items()
                if contains in name
            ]
        }
