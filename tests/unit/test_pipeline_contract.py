"""Every state machine definition (statemachine/*.asl.json: the training pipeline, the batch
transform) against AWS's rules, for every state whether or not a run reaches it.

- Every name in every Retry/Catch `ErrorEquals` is one that Task's integration can raise, by AWS's
  documented naming (`dogbreed.aws.stepfunctions`, derived from botocore's error shapes), a
  `States.*` name, or the project's own task-token error.
- Every literal field of every Task's `Arguments` exists in botocore's input shape of the API it
  calls (the functional tests validate the whole rendered request of every executed Task as well).
- Creates are not retried: a create that failed after SageMaker accepted it comes back as "already
  exists", and the Catch that follows would stop the live job.
- The definition is JSONata throughout, takes every name through DefinitionSubstitutions, and holds
  the one copy of the search space and the metric definitions, which train.py's must equal.
"""

from __future__ import annotations

import argparse
import re
from typing import Any

import pytest
from dogbreed_job.metrics import METRIC_DEFINITIONS
from jsonata import jsonata

from dogbreed import REPO_ROOT, STATE_MACHINE_PATH
from dogbreed.aws import service_models
from dogbreed.aws import stepfunctions as sfn_rules
from dogbreed.pipeline import approval
from dogbreed.pipeline.asl import load_definition, task_states, training_config, tuned_hyperparameters
from dogbreed.template_stack import TemplateStack

ASL_TEXT = STATE_MACHINE_PATH.read_text(encoding="utf-8")
DEFINITION = load_definition()
TASKS = dict(task_states(DEFINITION))
STATE_MACHINE_FILES = sorted((REPO_ROOT / "statemachine").glob("*.asl.json"))
DEFINITIONS = {path.name: load_definition(path) for path in STATE_MACHINE_FILES}
ALL_TASKS = [
    (file, name, state) for file, definition in DEFINITIONS.items() for name, state in task_states(definition)
]
# Error names the project's own code raises through a task token (SendTaskFailure).
TASK_TOKEN_ERRORS = {"sns:publish.waitForTaskToken": {approval.APPROVAL_REJECTED_ERROR}}
# JSONPath-era fields that a JSONata state may not carry.
JSONPATH_FIELDS = {"Parameters", "ResultSelector", "ResultPath", "InputPath", "OutputPath", "ItemsPath"}


def _integration_key(resource: str) -> str:
    return resource.split(":::", 1)[1]


def _error_names(state: dict[str, Any]) -> list[str]:
    return [name for rule in state.get("Retry", []) + state.get("Catch", []) for name in rule["ErrorEquals"]]


def error_name_problems(definition: dict[str, Any]) -> list[str]:
    problems = []
    for name, state in task_states(definition):
        integration = sfn_rules.parse_resource(state["Resource"])
        allowed = (
            sfn_rules.STATES_ERRORS
            | sfn_rules.raisable_error_names(integration)
            | TASK_TOKEN_ERRORS.get(_integration_key(state["Resource"]), set())
        )
        problems += [
            f"{name}: {error} is not raised by {state['Resource']}"
            for error in _error_names(state)
            if error not in allowed
        ]
    return problems


def _literal_field_problems(value: Any, shape: Any, path: str) -> list[str]:
    """Literal keys of an Arguments template against the shape (JSONata strings are not looked into)."""
    if isinstance(value, dict) and shape is not None and shape.type_name == "structure":
        problems = []
        members = {member.lower(): member for member in shape.members}
        for key, item in value.items():
            member = members.get(key.lower())
            if member is None:
                problems.append(f"{path}.{key} is not a field of {shape.name}")
            else:
                problems += _literal_field_problems(item, shape.members[member], f"{path}.{key}")
        return problems
    if isinstance(value, list) and shape is not None and shape.type_name == "list":
        return [
            p
            for index, item in enumerate(value)
            for p in _literal_field_problems(item, shape.member, f"{path}[{index}]")
        ]
    return []


def request_field_problems(definition: dict[str, Any]) -> list[str]:
    problems = []
    for name, state in task_states(definition):
        integration = sfn_rules.parse_resource(state["Resource"])
        shape = service_models.operation_model(integration.boto_service, integration.operation).input_shape
        problems += _literal_field_problems(state.get("Arguments", {}), shape, name)
    return problems


def test_every_state_machine_file_is_checked_and_deployed_by_the_template() -> None:
    deployed = {
        resource["Properties"]["DefinitionUri"]
        for resource in TemplateStack.load().resources.values()
        if resource["Type"] == "AWS::Serverless::StateMachine"
    }
    assert {f"statemachine/{path.name}" for path in STATE_MACHINE_FILES} == deployed
    assert {"training_pipeline.asl.json", "batch_transform.asl.json"} <= set(DEFINITIONS)


@pytest.mark.parametrize("file", sorted(DEFINITIONS))
def test_every_error_name_in_every_retry_and_catch_can_be_raised_by_its_task(file: str) -> None:
    assert error_name_problems(DEFINITIONS[file]) == []


def test_a_misnamed_error_is_caught_by_the_check() -> None:
    # Given the probe mistake that once kept every first deploy from creating its endpoint
    definition = load_definition()
    definition["States"]["FindEndpoint"]["Retry"][0]["ErrorEquals"] = ["SageMaker.AmazonSageMakerException"]

    # Then the check names it: an SDK integration raises SageMaker.SageMakerException
    resource = "arn:${Partition}:states:::aws-sdk:sagemaker:listEndpoints"
    assert error_name_problems(definition) == [
        f"FindEndpoint: SageMaker.AmazonSageMakerException is not raised by {resource}"
    ]


@pytest.mark.parametrize("file", sorted(DEFINITIONS))
def test_every_literal_request_field_of_every_task_is_in_the_apis_input_shape(file: str) -> None:
    assert request_field_problems(DEFINITIONS[file]) == []


def test_a_misspelled_request_field_is_caught_by_the_check() -> None:
    definition = load_definition()
    definition["States"]["CreateEndpointConfig"]["Arguments"]["ProductionVariants"][0]["InstanceCnt"] = 1

    assert request_field_problems(definition) == [
        "CreateEndpointConfig.ProductionVariants[0].InstanceCnt is not a field of ProductionVariant"
    ]


OPTIMIZED_SAGEMAKER = [
    (file, name) for file, name, state in ALL_TASKS if ":::sagemaker:" in state["Resource"]
]


@pytest.mark.parametrize(("file", "name"), OPTIMIZED_SAGEMAKER)
def test_sagemaker_creates_and_updates_are_not_retried(file: str, name: str) -> None:
    assert "Retry" not in DEFINITIONS[file]["States"][name]


def test_the_batch_transform_is_an_optimized_sync_sagemaker_task() -> None:
    assert ("batch_transform.asl.json", "Transform") in OPTIMIZED_SAGEMAKER
    resource = DEFINITIONS["batch_transform.asl.json"]["States"]["Transform"]["Resource"]
    assert resource == "arn:${Partition}:states:::sagemaker:createTransformJob.sync"


def test_a_retried_create_carries_an_idempotency_token() -> None:
    for file, name, state in ALL_TASKS:
        action = sfn_rules.parse_resource(state["Resource"]).action
        if action.startswith("create") and "Retry" in state:
            assert "ClientToken" in state["Arguments"], f"{file}: {name}"


@pytest.mark.parametrize("file", sorted(DEFINITIONS))
def test_the_definition_is_jsonata_throughout(file: str) -> None:
    definition = DEFINITIONS[file]
    assert definition["QueryLanguage"] == "JSONata"
    for name, state in definition["States"].items():
        assert not JSONPATH_FIELDS & set(state), f"{name} uses JSONPath fields"
        assert state.get("QueryLanguage", "JSONata") == "JSONata"


_JSONATA_CALL = re.compile(r"\$(\w+)\s*\(")
_JSONATA_DEFINED = re.compile(r"\$(\w+)\s*:=\s*function\b")


def _jsonata_expressions(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value] if value.startswith("{%") and value.endswith("%}") else []
    items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else []
    return [expression for item in items for expression in _jsonata_expressions(item)]


def jsonata_function_problems(definition: dict[str, Any]) -> list[str]:
    """Calls of functions Step Functions does not offer (a function the expression defines is fine)."""
    problems = []
    for expression in _jsonata_expressions(definition):
        defined = set(_JSONATA_DEFINED.findall(expression))
        problems += [
            f"${name}() in {expression[:80]}"
            for name in _JSONATA_CALL.findall(expression)
            if name not in sfn_rules.JSONATA_FUNCTIONS and name not in defined
        ]
    return problems


@pytest.mark.parametrize("file", sorted(DEFINITIONS))
def test_every_jsonata_function_called_is_one_step_functions_offers(file: str) -> None:
    assert jsonata_function_problems(DEFINITIONS[file]) == []


def test_eval_and_unknown_functions_are_caught_by_the_check() -> None:
    state = {
        "Output": "{% $eval($states.input.cause).reason %}",
        "Assign": {"x": ["{% $fromJson('1') %}", "{% ($f := function($v) { $v }; $f(1)) %}"]},
    }
    assert [problem.split("(")[0] for problem in jsonata_function_problems({"States": {"S": state}})] == [
        "$eval",
        "$fromJson",
    ]


def test_the_jsonata_library_named_is_the_one_the_local_evaluator_implements() -> None:
    library = set(jsonata.Jsonata.static_frame.bindings)
    assert sfn_rules.JSONATA_FUNCTIONS - {"partition", "range", "hash", "uuid", "parse"} <= library


@pytest.mark.parametrize("path", STATE_MACHINE_FILES, ids=lambda path: path.name)
def test_no_literal_arns_or_account_ids(path: Any) -> None:
    text = path.read_text(encoding="utf-8")
    assert not re.search(r"arn:aws:", text), "ARNs come in through DefinitionSubstitutions"
    assert not re.search(r"\b\d{12}\b", text)


def _state_machine_resource(file: str) -> dict[str, Any]:
    (resource,) = [
        resource
        for resource in TemplateStack.load().resources.values()
        if resource["Type"] == "AWS::Serverless::StateMachine"
        and resource["Properties"]["DefinitionUri"] == f"statemachine/{file}"
    ]
    return resource


@pytest.mark.parametrize("path", STATE_MACHINE_FILES, ids=lambda path: path.name)
def test_every_substitution_is_defined_by_the_template_and_used(path: Any) -> None:
    used = set(re.findall(r"\$\{([^}]+)\}", path.read_text(encoding="utf-8")))
    defined = set(_state_machine_resource(path.name)["Properties"]["DefinitionSubstitutions"])
    assert used == defined


def test_the_metric_definitions_are_the_training_jobs_regexes() -> None:
    assert training_config(DEFINITION)["metricDefinitions"] == METRIC_DEFINITIONS


def _train_flags() -> set[str]:
    from dogbreed_job.arguments import get_args_parser

    parser: argparse.ArgumentParser = get_args_parser()
    return {
        option[2:]
        for action in parser._actions
        for option in action.option_strings
        if option.startswith("--")
    }


def test_every_tuned_and_static_hyperparameter_is_a_train_py_flag() -> None:
    flags = _train_flags()
    static = [
        name
        for name in training_config(DEFINITION)["staticHyperParameters"]
        if not name.startswith("sagemaker_")
    ]
    spot = list(training_config(DEFINITION)["spotHyperParameters"])
    assert set(tuned_hyperparameters(DEFINITION) + static + spot + ["model-version"]) <= flags


def test_the_search_space_is_the_one_the_issue_describes() -> None:
    assert tuned_hyperparameters(DEFINITION) == ["learning-rate", "weight-decay", "epochs", "batch-size"]
