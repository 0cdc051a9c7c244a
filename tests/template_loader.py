"""Load `template.yaml` with its CloudFormation short-form tags (`!Ref`, `!Sub`, `!GetAtt`, ...).

Tags become their long form (`{"Ref": "X"}`, `{"Fn::Sub": "..."}`, `{"Fn::GetAtt": ["X", "Arn"]}`), so
tests can walk the template as plain dicts and lists:

    from tests.template_loader import load_template
    resources = load_template()["Resources"]
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]

from dogbreed import TEMPLATE_PATH

_FN_TAGS = (
    "And",
    "Base64",
    "Cidr",
    "Equals",
    "FindInMap",
    "GetAZs",
    "If",
    "ImportValue",
    "Join",
    "Not",
    "Or",
    "Select",
    "Split",
    "Sub",
    "Transform",
    "ToJsonString",
    "Length",
)


class CloudFormationLoader(yaml.SafeLoader):
    """A SafeLoader that understands the CloudFormation intrinsic-function tags."""


def _construct(long_name: str) -> Any:
    def construct(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        return {long_name: value}

    return construct


def _construct_getatt(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        # `!GetAtt Resource.Attribute.Path` -> ["Resource", "Attribute.Path"]
        resource, _, attribute = str(loader.construct_scalar(node)).partition(".")
        return {"Fn::GetAtt": [resource, attribute]}
    return {"Fn::GetAtt": loader.construct_sequence(node, deep=True)}


CloudFormationLoader.add_constructor("!Ref", _construct("Ref"))
CloudFormationLoader.add_constructor("!Condition", _construct("Condition"))
CloudFormationLoader.add_constructor("!GetAtt", _construct_getatt)
for _tag in _FN_TAGS:
    CloudFormationLoader.add_constructor(f"!{_tag}", _construct(f"Fn::{_tag}"))


def load_template(path: Path | str = TEMPLATE_PATH) -> dict[str, Any]:
    """The parsed template (default: the repository's template.yaml)."""
    with open(path, encoding="utf-8") as handle:
        document = yaml.load(handle, Loader=CloudFormationLoader)
    if not isinstance(document, dict):
        raise ValueError(f"{path} is not a CloudFormation template")
    return document
