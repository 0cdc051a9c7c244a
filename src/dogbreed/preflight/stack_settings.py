"""The stack's own settings: its name (the endpoint and the model package group are named after it),
template.yaml's Rules with the chosen parameters, and the pairs of parameters whose order the APIs
they reach enforce (CloudFormation Rules cannot compare numbers, so a deploy would accept them)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Final

from dogbreed.preflight.account import Check, Status
from dogbreed.template_stack import TemplateStack

# Names the stack gives SageMaker resources: the endpoint (EndpointName) and the model package group.
NAMED_AFTER_STACK: Final = ("EndpointName", "EntityName")


@cache
def _name_shapes() -> tuple[tuple[str, str, int], ...]:
    """(shape, pattern, max length) of the SageMaker names the stack name becomes (botocore's model)."""
    import botocore.session

    model = botocore.session.get_session().get_service_model("sagemaker")
    shapes = (model.shape_for(name) for name in NAMED_AFTER_STACK)
    return tuple((shape.name, shape.metadata["pattern"], int(shape.metadata["max"])) for shape in shapes)


def check_stack_name(name: str) -> Check:
    longest = min(max_length for _, _, max_length in _name_shapes())
    problems = []
    if name != name.lower():
        problems.append("has upper-case letters")
    if len(name) > longest:
        problems.append(f"is {len(name)} characters long")
    for shape, pattern, _ in _name_shapes():
        if not re.fullmatch(pattern, name):
            problems.append(f"does not match SageMaker's {shape} pattern {pattern}")
            break
    return Check(
        "stack name",
        name,
        f"lowercase, <= {longest} chars, letters, digits, hyphens",
        Status.FIX if problems else Status.OK,
        f"the name {' and '.join(problems)}: the endpoint and the model package group are named after "
        "the stack; choose another (--stack NAME, or stack_name in samconfig.toml)"
        if problems
        else "",
    )


def check_template_rules(stack: TemplateStack) -> Check:
    """The template's Rules with these parameters: CloudFormation refuses a deploy that breaks one."""
    broken = stack.broken_rules()
    return Check(
        "parameter rules",
        f"{len(broken)} broken" if broken else "all hold",
        "template.yaml's Rules",
        Status.FIX if broken else Status.OK,
        "; ".join(broken),
    )


@dataclass(frozen=True)
class OrderedParameters:
    """`low` may not exceed `high` where `applies` to the parameters: `refused_by` says who refuses it."""

    low: str
    high: str
    refused_by: str
    applies: Callable[[dict[str, str]], bool] = lambda _parameters: True


ORDERED_PARAMETERS: Final = (
    OrderedParameters(
        "TuningLearningRateMin", "TuningLearningRateMax", "the tuning job's learning-rate range"
    ),
    OrderedParameters("TuningEpochsMin", "TuningEpochsMax", "the tuning job's epochs range"),
    OrderedParameters(
        "EndpointMinInstances",
        "EndpointMaxInstances",
        "RegisterScalableTarget's MinCapacity and MaxCapacity",
        lambda parameters: parameters.get("EndpointType") == "instance",
    ),
    OrderedParameters(
        "MaxTrainingRuntimeSeconds",
        "MaxSpotWaitSeconds",
        "StoppingCondition, whose MaxWaitTimeInSeconds must be equal to or greater than MaxRuntimeInSeconds",
        lambda parameters: parameters.get("UseSpotTraining") == "true",
    ),
)


def _out_of_order(pair: OrderedParameters, parameters: dict[str, str]) -> str | None:
    low, high = parameters.get(pair.low, ""), parameters.get(pair.high, "")
    try:
        if float(low) <= float(high):
            return None
    except ValueError:
        return f"{pair.low} {low!r} and {pair.high} {high!r} are not both numbers"
    return f"{pair.low} {low} is above {pair.high} {high} ({pair.refused_by})"


def check_parameter_order(stack: TemplateStack) -> Check:
    """Pairs of parameters in order: the pipeline would otherwise fail at the call that reads them,
    after the training it has paid for."""
    broken = [
        problem
        for pair in ORDERED_PARAMETERS
        if pair.applies(stack.parameters) and (problem := _out_of_order(pair, stack.parameters)) is not None
    ]
    return Check(
        "parameter ranges",
        f"{len(broken)} out of order" if broken else "in order",
        "each minimum at most its maximum",
        Status.FIX if broken else Status.OK,
        "; ".join(broken),
    )


def check_training_isolation(stack: TemplateStack) -> Check:
    """EnableTrainingNetworkIsolation against how the jobs get their code: the training toolkit
    downloads `sagemaker_submit_directory` (an S3 URI) from inside the container, which network
    isolation cuts off from S3, so every trial would fail after its instance started."""
    isolated = stack.parameters.get("EnableTrainingNetworkIsolation") == "true"
    return Check(
        "training isolation",
        "on" if isolated else "off",
        "off while the code comes from S3",
        Status.FIX if isolated else Status.OK,
        "EnableTrainingNetworkIsolation=true: the jobs download their code from S3 inside the container, "
        "which isolation forbids; leave it false (docs/security.md, VPC plumbing)"
        if isolated
        else "",
    )
