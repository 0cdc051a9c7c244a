"""Derive the state machine's in-VPC states from the states they copy.

Plain JSONPath cannot leave a request field out conditionally, and SageMaker rejects a VpcConfig
without subnets, so each SageMaker state that can run in the optional VPC (the template's HasVpc)
has a copy that adds `VpcConfig`, and a Choice on `$.config.use_vpc` in front of the pair picks one:

    <Name>Network (Choice) -> <Name>InVpc (the copy, with VpcConfig) | <Name> (the original)

Edit only the originals, then run this; tests/unit/test_pipeline_asl.py fails until the copies
match (run statemachine/sync_metric_definitions.py first when the metric regexes changed):

    .venv/bin/python statemachine/sync_vpc_variants.py
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

ASL_PATH = Path(__file__).resolve().parent / "training_pipeline.asl.json"
VPC_CONFIG_PATH = "$.config.vpc_config"
# State -> the keys leading to the request object that takes VpcConfig.
VPC_STATES: dict[str, tuple[str, ...]] = {
    "Tune": ("Parameters", "TrainingJobDefinition"),
    "TrainFinalModel": ("Parameters",),
    "CreateModel": ("Parameters",),
}


def variant_name(name: str) -> str:
    return f"{name}InVpc"


def choice_name(name: str) -> str:
    return f"{name}Network"


def _variant(state: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    variant = copy.deepcopy(state)
    request = variant
    for key in path:
        request = request[key]
    request["VpcConfig.$"] = VPC_CONFIG_PATH
    return variant


def _choice(name: str) -> dict[str, Any]:
    return {
        "Type": "Choice",
        "Comment": f"{name} in the VPC of the VpcSubnetIds/VpcSecurityGroupIds parameters, when given.",
        "Choices": [{"Variable": "$.config.use_vpc", "BooleanEquals": True, "Next": variant_name(name)}],
        "Default": name,
    }


def _redirect(node: Any, target: str, via: str) -> int:
    """Point every Next/Default that names `target` at `via` instead; returns how many changed."""
    changed = 0
    if isinstance(node, list):
        return sum(_redirect(item, target, via) for item in node)
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("Next", "Default") and value == target:
                node[key] = via
                changed += 1
            else:
                changed += _redirect(value, target, via)
    return changed


def sync(definition: dict[str, Any]) -> int:
    """Bring the choices and copies in line with the originals; returns the number of changes."""
    states: dict[str, Any] = definition["States"]
    changed = 0
    if definition.get("StartAt") in VPC_STATES:
        raise ValueError("the state machine cannot start at a state with an in-VPC copy")
    for name in VPC_STATES:
        for other, state in states.items():
            if other != choice_name(name):
                changed += _redirect(state, name, choice_name(name))
    ordered: dict[str, Any] = {}
    for name, state in states.items():
        if name in (choice_name(n) for n in VPC_STATES) or name in (variant_name(n) for n in VPC_STATES):
            continue
        if name in VPC_STATES:
            wanted = {
                choice_name(name): _choice(name),
                name: state,
                variant_name(name): _variant(state, VPC_STATES[name]),
            }
            changed += sum(states.get(key) != value for key, value in wanted.items())
            ordered.update(wanted)
        else:
            ordered[name] = state
    changed += list(ordered) != list(states)
    definition["States"] = ordered
    return changed


if __name__ == "__main__":
    asl = json.loads(ASL_PATH.read_text(encoding="utf-8"))
    count = sync(asl)
    ASL_PATH.write_text(json.dumps(asl, indent=2) + "\n", encoding="utf-8")
    print(f"{count} changes to the in-VPC states of {ASL_PATH.name}")
