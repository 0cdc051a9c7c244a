"""Models and endpoint configurations: Create / Describe / Delete / List, and each model's
`ModelDataUrl` downloaded and extracted once (the container's /opt/ml/model) for the fleets.

A model created from a model package (`PrimaryContainer.ModelPackageName`) serves the package's
container (image, `ModelDataUrl`, environment), read from the model registry at create time as
SageMaker does; DescribeModel shows the container as it was given."""

from __future__ import annotations

import copy
import hashlib
import threading
from pathlib import Path
from typing import Any

from dogbreed.local.sagemaker import s3io
from dogbreed.local.sagemaker._aws import (
    ClientFactory,
    Listing,
    RoleClientFactory,
    api_error,
    could_not_find,
    sagemaker_arn,
    utcnow,
)
from dogbreed.local.sagemaker.serverless import (
    endpoint_config_problems,
    is_serverless,
    serverless_model_problem,
)
from dogbreed.local.sagemaker.tags import TagStore

MODEL_LISTING = Listing("Models", "ModelName")
CONFIG_LISTING = Listing("EndpointConfigs", "EndpointConfigName")


class ModelStore:
    def __init__(
        self,
        *,
        state_dir: Path,
        clients: ClientFactory,
        tags: TagStore,
        region: str,
        role_clients: RoleClientFactory | None = None,
    ) -> None:
        self.root = state_dir / "models"
        self._clients = clients
        # The model data is downloaded with the model's ExecutionRoleArn, as SageMaker does.
        self._role_clients = role_clients or (lambda _role: clients)
        self._tags = tags
        self._region = region
        self._lock = threading.RLock()
        self._models: dict[str, dict[str, Any]] = {}
        self._configs: dict[str, dict[str, Any]] = {}
        self._model_dirs: dict[str, Path] = {}
        self._serving: dict[str, dict[str, Any]] = {}
        self._download_lock = threading.Lock()

    # ----------------------------------------------------------------- models

    def create_model(self, **request: Any) -> dict[str, Any]:
        name = request["ModelName"]
        container = request.get("PrimaryContainer") or (request.get("Containers") or [None])[0]
        serving = (
            self._package_container(container["ModelPackageName"])
            if container and container.get("ModelPackageName")
            else container
        )
        if not serving or not serving.get("ModelDataUrl"):
            raise api_error(
                "CreateModel", "ValidationException", "PrimaryContainer.ModelDataUrl is required locally."
            )
        arn = sagemaker_arn("model", name, self._region)
        with self._lock:
            if name in self._models:
                raise api_error(
                    "CreateModel", "ValidationException", f'Cannot create already existing model "{arn}".'
                )
            self._models[name] = {
                "ModelName": name,
                "ModelArn": arn,
                "PrimaryContainer": copy.deepcopy(container),
                "ExecutionRoleArn": request.get("ExecutionRoleArn", ""),
                "CreationTime": utcnow(),
                "EnableNetworkIsolation": request.get("EnableNetworkIsolation", False),
                **({"VpcConfig": copy.deepcopy(request["VpcConfig"])} if request.get("VpcConfig") else {}),
            }
            self._serving[name] = copy.deepcopy(serving)
        self._tags.register(arn, request.get("Tags", []))
        return {"ModelArn": arn}

    def _package_container(self, package: str) -> dict[str, Any]:
        """The container a model package specifies (the registry answers at AWS_ENDPOINT_URL)."""
        try:
            described = self._clients("sagemaker").describe_model_package(ModelPackageName=package)
        except Exception as error:
            raise api_error(
                "CreateModel", "ValidationException", f"Could not find model package {package}."
            ) from error
        containers = described.get("InferenceSpecification", {}).get("Containers", [])
        if not containers:
            raise api_error(
                "CreateModel", "ValidationException", f"Model package {package} has no container."
            )
        container: dict[str, Any] = containers[0]
        return container

    def serving_container(self, model_name: str) -> dict[str, Any]:
        """What the model's instances run: its own container, or its model package's."""
        with self._lock:
            self.model(model_name, "CreateEndpoint")
            return copy.deepcopy(self._serving[model_name])

    def describe_model(self, **request: Any) -> dict[str, Any]:
        return copy.deepcopy(self.model(request["ModelName"], "DescribeModel"))

    def delete_model(self, **request: Any) -> dict[str, Any]:
        with self._lock:
            model = self.model(request["ModelName"], "DeleteModel")
            del self._models[model["ModelName"]]
            self._serving.pop(model["ModelName"], None)
        self._tags.forget(model["ModelArn"])
        return {}

    def list_models(self, **request: Any) -> dict[str, Any]:
        with self._lock:
            models = list(self._models.values())
        summaries = [
            {key: model[key] for key in ("ModelName", "ModelArn", "CreationTime")} for model in models
        ]
        return MODEL_LISTING.page(summaries, request)

    def model(self, name: str, operation: str) -> dict[str, Any]:
        with self._lock:
            model = self._models.get(name)
        if model is None:
            raise could_not_find(operation, "model", "model", name, self._region)
        return model

    # ----------------------------------------------------------------- endpoint configs

    def create_endpoint_config(self, **request: Any) -> dict[str, Any]:
        operation = "CreateEndpointConfig"
        name = request["EndpointConfigName"]
        arn = sagemaker_arn("endpoint-config", name, self._region)
        variants = request["ProductionVariants"]
        names = [variant["VariantName"] for variant in variants]
        if len(set(names)) != len(names):
            raise api_error(operation, "ValidationException", "Variant names must be unique.")
        problem = endpoint_config_problems(request)
        for variant in variants:
            model = self.model(variant["ModelName"], operation)
            if problem is None and is_serverless(variant):
                problem = serverless_model_problem(model)
        if problem:
            raise api_error(operation, "ValidationException", problem)
        with self._lock:
            if name in self._configs:
                raise api_error(
                    operation,
                    "ValidationException",
                    f'Cannot create already existing endpoint configuration "{arn}".',
                )
            self._configs[name] = {
                "EndpointConfigName": name,
                "EndpointConfigArn": arn,
                "ProductionVariants": copy.deepcopy(variants),
                "CreationTime": utcnow(),
            }
            if "DataCaptureConfig" in request:  # what the runtime's data capture follows
                self._configs[name]["DataCaptureConfig"] = copy.deepcopy(request["DataCaptureConfig"])
        self._tags.register(arn, request.get("Tags", []))
        return {"EndpointConfigArn": arn}

    def describe_endpoint_config(self, **request: Any) -> dict[str, Any]:
        return copy.deepcopy(self.config(request["EndpointConfigName"], "DescribeEndpointConfig"))

    def delete_endpoint_config(self, **request: Any) -> dict[str, Any]:
        with self._lock:
            config = self.config(request["EndpointConfigName"], "DeleteEndpointConfig")
            del self._configs[config["EndpointConfigName"]]
        self._tags.forget(config["EndpointConfigArn"])
        return {}

    def list_endpoint_configs(self, **request: Any) -> dict[str, Any]:
        with self._lock:
            configs = list(self._configs.values())
        keys = ("EndpointConfigName", "EndpointConfigArn", "CreationTime")
        return CONFIG_LISTING.page([{key: config[key] for key in keys} for config in configs], request)

    def config(self, name: str, operation: str) -> dict[str, Any]:
        with self._lock:
            config = self._configs.get(name)
        if config is None:
            raise could_not_find(operation, "endpoint configuration", "endpoint-config", name, self._region)
        return config

    def role_clients(self, model_name: str) -> ClientFactory:
        """The clients SageMaker acts with for this model: its execution role's."""
        return self._role_clients(str(self.model(model_name, "UpdateEndpoint").get("ExecutionRoleArn", "")))

    # ----------------------------------------------------------------- model data

    def model_dir(self, model_name: str) -> Path:
        """Download and extract the model's ModelDataUrl once per model (the container's /opt/ml/model)."""
        with self._download_lock:
            if model_name in self._model_dirs:
                return self._model_dirs[model_name]
            url = self.serving_container(model_name)["ModelDataUrl"]
            role = str(self.model(model_name, "CreateEndpoint").get("ExecutionRoleArn", ""))
            target = self.root / model_name / hashlib.sha256(url.encode()).hexdigest()[:12]
            archive = s3io.download_file(self._role_clients(role)("s3"), url, target / "model.tar.gz")
            self._model_dirs[model_name] = s3io.extract_archive(archive, target / "model")
            return self._model_dirs[model_name]
