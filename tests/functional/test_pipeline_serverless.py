"""The pipeline's updates between endpoint types, on moto's Step Functions interpreter with the
in-memory SageMaker (fixtures in conftest.py): a serverless endpoint updated to a new serverless
model, and a serverless endpoint moved to instances, which SageMaker allows (the other way round is
refused before the gate: test_pipeline_paths.py). Every Task request is checked against botocore."""

from __future__ import annotations

from typing import Any

from tests.functional.fake_sagemaker import Outcomes
from tests.functional.pipeline_harness import seed_production, succeeded_output

SERVING = "dogbreed-0c10ca1d-260101000000-aaa"


def test_a_serverless_endpoint_is_updated_blue_green_to_a_new_serverless_config(stack: Any) -> None:
    # Given a serverless endpoint serving a registered model at 0.85
    pipeline = stack(
        Outcomes(trial_test_acc=0.9, final_test_acc=0.9),
        EndpointType="serverless",
        ServerlessMemorySizeInMB="4096",
    )
    seed_production(pipeline, 0.85, SERVING, serverless=True)

    # When a run produces a 0.90 model
    execution_arn = pipeline.start()
    output = succeeded_output(pipeline.wait(execution_arn))

    # Then UpdateEndpoint moves it to the new serverless config with the deployment guardrails
    # (blue/green supports serverless endpoints; only rolling deployments exclude them), and no
    # auto scaling is deregistered or registered around it
    assert (output["outcome"], output["rollout"]["replaced_version"]) == ("deployed", SERVING)
    endpoint = pipeline.backend.endpoints[pipeline.endpoint_name]
    assert endpoint["EndpointConfigName"] == output["model_version"]
    policy = endpoint["update_request"]["DeploymentConfig"]
    assert policy["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]["Type"] == "ALL_AT_ONCE"
    assert len(policy["AutoRollbackConfiguration"]["Alarms"]) == 3
    [variant] = pipeline.backend.endpoint_configs[output["model_version"]]["ProductionVariants"]
    assert variant["ServerlessConfig"] == {"MemorySizeInMB": 4096, "MaxConcurrency": 5}
    entered = pipeline.entered_states(execution_arn)
    assert not {"DeregisterScaling", "ScaleEndpoint", "PutScalingPolicy"} & set(entered)
    autoscaling = pipeline.session.client("application-autoscaling")
    assert autoscaling.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"] == []


def test_a_serverless_endpoint_moves_to_instances_and_gets_auto_scaling(stack: Any) -> None:
    # Given a serverless endpoint (never registered with auto scaling), and the stack now on instances
    pipeline = stack(Outcomes(trial_test_acc=0.9, final_test_acc=0.9), EndpointType="instance")
    seed_production(pipeline, 0.85, SERVING, serverless=True)

    # When a better model is deployed
    execution_arn = pipeline.start()
    output = succeeded_output(pipeline.wait(execution_arn))

    # Then the update goes straight to UpdateEndpoint (nothing to deregister), the new variant has
    # instances and an isolated model, and target tracking is registered after the update
    assert (output["outcome"], output["endpoint_type"]) == ("deployed", "instance")
    entered = pipeline.entered_states(execution_arn)
    assert "DeregisterScaling" not in entered
    assert (
        entered.index("UpdateEndpoint") < entered.index("ScaleEndpoint") < entered.index("PutScalingPolicy")
    )
    [variant] = pipeline.backend.endpoint_configs[output["model_version"]]["ProductionVariants"]
    assert (variant["InstanceType"], variant["InitialInstanceCount"]) == (
        pipeline.stack.parameters["EndpointInstanceType"],
        int(pipeline.stack.parameters["EndpointMinInstances"]),
    )
    assert "ServerlessConfig" not in variant
    assert pipeline.backend.models[output["model_version"]]["EnableNetworkIsolation"] is True
    autoscaling = pipeline.session.client("application-autoscaling")
    [target] = autoscaling.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
    assert target["ResourceId"] == f"endpoint/{pipeline.endpoint_name}/variant/AllTraffic"
    assert output["scaling_policy_arn"]
