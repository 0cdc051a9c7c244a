"""Put a model directory behind the stack's endpoint without running the pipeline.

The load benchmark, the reliability suites and quick manual checks need a serving endpoint in
seconds; the pipeline takes minutes. This packs the directory as SageMaker would (`model.tar.gz`
at the archive root), uploads it to the data bucket and creates (or blue/green updates) the
template's endpoint through the local cloud's SageMaker API.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from dogbreed.local.cloud.state import CloudState
from dogbreed.template_stack import TemplateStack

EXECUTION_ROLE = "arn:aws:iam::123456789012:role/dogbreed-local-sagemaker"


def serving_image() -> str:
    """The image the template gives the pipeline's models (the local backend runs code/inference.py
    whatever it says; the name keeps the record like the pipeline's)."""
    stack = TemplateStack.load()
    substitutions = stack.resources["TrainingPipeline"]["Properties"]["DefinitionSubstitutions"]
    return str(stack.resolve(substitutions["InferenceImageUri"]))


def endpoint_status(state: CloudState) -> str | None:
    """The stack endpoint's status, None when it does not exist."""
    sagemaker = state.client("sagemaker")
    try:
        described = sagemaker.describe_endpoint(EndpointName=state.outputs["EndpointName"])
    except sagemaker.exceptions.ClientError:  # ValidationException "Could not find endpoint"
        return None
    return str(described["EndpointStatus"])


def deploy_model_dir(
    state: CloudState,
    model_dir: Path,
    *,
    name: str,
    instance_count: int = 1,
    timeout: float = 180.0,
    deployment_config: dict[str, Any] | None = None,
) -> str:
    """Serve `model_dir` on the stack's endpoint (created, or updated blue/green with the
    `deployment_config` guardrails, as UpdateEndpoint takes them); returns its name."""
    from dogbreed_job.export import pack_model_archive

    outputs = state.outputs
    endpoint_name = outputs["EndpointName"]
    s3, sagemaker = state.client("s3"), state.client("sagemaker")
    key = f"models/direct/{name}/model.tar.gz"
    with tempfile.TemporaryDirectory() as scratch:
        archive = pack_model_archive(model_dir, Path(scratch) / "model.tar.gz")
        s3.upload_file(str(archive), outputs["DataBucketName"], key)
    sagemaker.create_model(
        ModelName=name,
        PrimaryContainer={
            "Image": serving_image(),
            "ModelDataUrl": f"s3://{outputs['DataBucketName']}/{key}",
        },
        ExecutionRoleArn=EXECUTION_ROLE,
    )
    sagemaker.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": name,
                "InitialInstanceCount": instance_count,
                "InstanceType": "ml.m5.large",
            }
        ],
    )
    if endpoint_status(state) is None:
        sagemaker.create_endpoint(EndpointName=endpoint_name, EndpointConfigName=name)
    else:
        guardrails = {"DeploymentConfig": deployment_config} if deployment_config else {}
        sagemaker.update_endpoint(EndpointName=endpoint_name, EndpointConfigName=name, **guardrails)
    wait_in_service(state, timeout=timeout)
    return endpoint_name


def wait_in_service(state: CloudState, *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = endpoint_status(state)
        if status == "InService":
            return
        if status == "Failed":
            raise RuntimeError(f"endpoint {state.outputs['EndpointName']} failed to deploy")
        time.sleep(0.5)
    raise TimeoutError(f"endpoint {state.outputs['EndpointName']} not InService after {timeout:.0f} s")
