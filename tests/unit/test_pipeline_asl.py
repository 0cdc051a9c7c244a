"""The state machine definition's contracts: JSONPath only, every name through substitutions,
metric regexes equal to the training job's, and the integrations the issue asks for."""

from __future__ import annotations

import copy
import importlib.util
import json
import re
from typing import Any

from dogbreed_job.metrics import METRIC_DEFINITIONS, OBJECTIVE_METRIC, OBJECTIVE_TYPE

from dogbreed import STATE_MACHINE_PATH
from dogbreed.local.template_resources import TemplateStack

# statemachine/ is a folder of scripts beside the ASL, not a package.
_SPEC = importlib.util.spec_from_file_location(
    "sync_vpc_variants", STATE_MACHINE_PATH.parent / "sync_vpc_variants.py"
)
assert _SPEC is not None and _SPEC.loader is not None
sync_vpc_variants = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(sync_vpc_variants)

ASL_TEXT = STATE_MACHINE_PATH.read_text(encoding="utf-8")
ASL: dict[str, Any] = json.loads(ASL_TEXT)
STATES: dict[str, dict[str, Any]] = ASL["States"]


def test_metric_definitions_equal_the_training_jobs_regexes() -> None:
    tuning = STATES["Tune"]["Parameters"]["TrainingJobDefinition"]["AlgorithmSpecification"]
    final = STATES["TrainFinalModel"]["Parameters"]["AlgorithmSpecification"]
    assert tuning["MetricDefinitions"] == METRIC_DEFINITIONS
    assert final["MetricDefinitions"] == METRIC_DEFINITIONS
    objective = STATES["Tune"]["Parameters"]["HyperParameterTuningJobConfig"][
        "HyperParameterTuningJobObjective"
    ]
    assert objective == {"Type": OBJECTIVE_TYPE, "MetricName": OBJECTIVE_METRIC}


def test_plain_jsonpath_and_no_literal_arns_or_account_ids() -> None:
    assert "QueryLanguage" not in ASL and "JSONata" not in ASL_TEXT
    assert not re.search(r"arn:aws:", ASL_TEXT), "ARNs come in through DefinitionSubstitutions"
    assert not re.search(r"\b\d{12}\b", ASL_TEXT)


def test_every_substitution_is_defined_by_the_template() -> None:
    used = set(re.findall(r"\$\{([^}]+)\}", ASL_TEXT))
    stack = TemplateStack.load()
    defined = set(stack.resources["TrainingPipeline"]["Properties"]["DefinitionSubstitutions"])
    assert used == defined


def test_tuning_is_bayesian_with_early_stopping_and_the_four_ranges() -> None:
    config = STATES["Tune"]["Parameters"]["HyperParameterTuningJobConfig"]
    assert STATES["Tune"]["Resource"].endswith(":sagemaker:createHyperParameterTuningJob.sync")
    assert config["Strategy"] == "Bayesian" and config["TrainingJobEarlyStoppingType"] == "Auto"
    ranges = config["ParameterRanges"]
    continuous = {r["Name"]: r["ScalingType"] for r in ranges["ContinuousParameterRanges"]}
    assert continuous["learning-rate"] == "Logarithmic" and "weight-decay" in continuous
    assert [r["Name"] for r in ranges["IntegerParameterRanges"]] == ["epochs"]
    assert [r["Name"] for r in ranges["CategoricalParameterRanges"]] == ["batch-size"]


def test_every_task_catches_into_a_failure_path_and_sdk_tasks_retry() -> None:
    for name, state in STATES.items():
        if state["Type"] != "Task":
            continue
        assert state.get("Catch"), f"{name} has no Catch"
        if name not in ("StopTuningJob", "StopTrainingJob"):
            assert state.get("Retry"), f"{name} has no Retry"
            assert all(r["BackoffRate"] > 1 for r in state["Retry"])


def test_sagemaker_tasks_also_retry_the_generic_sagemaker_error_a_few_times() -> None:
    # On AWS, the SageMaker integrations report throttling ("Rate exceeded") as
    # SageMaker.AmazonSageMakerException, the same name as permanent errors: a short budget.
    for name, state in STATES.items():
        retriers = state.get("Retry", [])
        if not any("SageMaker.ThrottlingException" in r["ErrorEquals"] for r in retriers):
            continue
        generic = [r for r in retriers if r["ErrorEquals"] == ["SageMaker.AmazonSageMakerException"]]
        assert len(generic) == 1, name
        assert generic[0]["MaxAttempts"] <= 3 and generic[0]["BackoffRate"] > 1


def test_the_endpoint_poll_is_bounded() -> None:
    status = STATES["EndpointStatus"]
    assert any(
        c.get("NumericGreaterThanEqualsPath") == "$.config.endpoint_poll_max_iterations"
        for c in status["Choices"]
    )


def test_in_vpc_copies_match_their_originals() -> None:
    # Given the definition as committed
    definition = copy.deepcopy(ASL)

    # When the in-VPC states are derived again from the originals
    changes = sync_vpc_variants.sync(definition)

    # Then nothing changes: edit the originals and run statemachine/sync_vpc_variants.py
    assert changes == 0


def test_each_sagemaker_network_choice_picks_the_copy_only_with_a_vpc() -> None:
    for name in sync_vpc_variants.VPC_STATES:
        choice = STATES[sync_vpc_variants.choice_name(name)]
        [rule] = choice["Choices"]
        assert (rule["Variable"], rule["BooleanEquals"]) == ("$.config.use_vpc", True)
        assert (rule["Next"], choice["Default"]) == (sync_vpc_variants.variant_name(name), name)
        assert "VpcConfig.$" not in json.dumps(STATES[name])
