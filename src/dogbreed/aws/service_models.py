"""botocore's service models (shipped with boto3): request shapes and modelled errors of every AWS API."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

import botocore.session
import regex
from botocore.model import OperationModel, ServiceModel, Shape
from botocore.validate import ParamValidator


@functools.cache
def service_model(service: str) -> ServiceModel:
    """`service` is boto3's client name (`sagemaker`, `application-autoscaling`, ...)."""
    return botocore.session.get_session().get_service_model(service)


def operation_model(service: str, operation: str) -> OperationModel:
    """`operation` in the API's PascalCase (`CreateTrainingJob`)."""
    return service_model(service).operation_model(operation)


def operation_names(service: str) -> frozenset[str]:
    return frozenset(service_model(service).operation_names)


def request_problems(service: str, operation: str, params: dict[str, Any]) -> str | None:
    """What the service would refuse in a request, or None when it is valid: botocore's client-side
    report (unknown or misspelled fields, missing required ones, wrong types, values under a minimum)
    plus the constraints the model declares but only the service checks (maximum lengths and sizes,
    patterns, enums; `constraint_problems`)."""
    shape = operation_model(service, operation).input_shape
    report = ParamValidator().validate(params, shape)
    problems = [report.generate_report()] if report.has_errors() else []
    problems += constraint_problems(params, shape, operation)
    return "\n".join(problems) or None


def constraint_problems(value: Any, shape: Shape | None, path: str) -> list[str]:
    """The service-side constraints of `shape` that `value` breaks: `max` (string length, list and map
    size, number), `pattern` (the model's Java-style regular expression, full match) and `enum`."""
    return list(_constraint_problems(value, shape, path))


def _constraint_problems(value: Any, shape: Shape | None, path: str) -> Iterator[str]:
    if shape is None:
        return
    kind, limits = shape.type_name, shape.metadata
    if kind == "structure" and isinstance(value, dict):
        members = shape.members
        for key, item in value.items():
            yield from _constraint_problems(item, members.get(key), f"{path}.{key}")
    elif kind == "list" and isinstance(value, list):
        if "max" in limits and len(value) > limits["max"]:
            yield f"{path}: {len(value)} items, more than the maximum {limits['max']}"
        for index, item in enumerate(value):
            yield from _constraint_problems(item, shape.member, f"{path}[{index}]")
    elif kind == "map" and isinstance(value, dict):
        if "max" in limits and len(value) > limits["max"]:
            yield f"{path}: {len(value)} entries, more than the maximum {limits['max']}"
        for key, item in value.items():
            yield from _constraint_problems(key, shape.key, f"{path} key {key!r}")
            yield from _constraint_problems(item, shape.value, f"{path}[{key!r}]")
    elif kind == "string" and isinstance(value, str):
        if "max" in limits and len(value) > limits["max"]:
            yield f"{path}: length {len(value)}, more than the maximum {limits['max']}"
        pattern = limits.get("pattern")
        if pattern and not _pattern(pattern).fullmatch(value):
            yield f"{path}: {value[:80]!r} does not match the pattern {pattern}"
        if shape.enum and value not in shape.enum:
            yield f"{path}: {value!r} is not one of {sorted(shape.enum)}"
    elif isinstance(value, int | float) and kind in _NUMBERS and value > limits.get("max", value):
        yield f"{path}: {value}, more than the maximum {limits['max']}"


_NUMBERS = frozenset({"integer", "long", "float", "double"})
# Java writes "every supplementary code point" as a range of UTF-16 surrogate pairs.
_JAVA_SUPPLEMENTARY = "\\uD800\\uDC00-\\uDBFF\\uDFFF"


@functools.cache
def _pattern(pattern: str) -> regex.Pattern[str]:
    """The model's patterns are Java regular expressions (`\\p{L}`, possessive quantifiers, surrogate
    pairs): the `regex` module reads them once the surrogate-pair range is written as code points."""
    return regex.compile(pattern.replace(_JAVA_SUPPLEMENTARY, "\\U00010000-\\U0010FFFF"))


def service_error_codes(service: str) -> frozenset[str]:
    """Error codes the service models anywhere (the SDKs generate one exception class each)."""
    return frozenset(shape.name for shape in service_model(service).error_shapes)


def operation_error_codes(service: str, operation: str) -> frozenset[str]:
    """Error codes the operation's model says it raises."""
    return frozenset(shape.name for shape in operation_model(service, operation).error_shapes)


def pascal_case(action: str) -> str:
    """Step Functions spells API actions in camelCase (`createTrainingJob`); botocore in PascalCase."""
    return action[:1].upper() + action[1:]
