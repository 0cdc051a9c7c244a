"""The PyTorch images per region: template.yaml's DLC registry Mapping and its one pinned release,
checked against the SageMaker SDK's own image URI config (`image_uri_config/pytorch.json` in the
installed `sagemaker` package) and `image_uris.retrieve`, for every region the SDK documents.
"""

from __future__ import annotations

import importlib.util
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from tests.support.templates import load_template

TEMPLATE = load_template()
RELEASE = TEMPLATE["Mappings"]["PyTorchRelease"]["Dlc"]
REGISTRY = TEMPLATE["Mappings"]["DlcRegistry"]
SUBSTITUTIONS = TEMPLATE["Resources"]["TrainingPipeline"]["Properties"]["DefinitionSubstitutions"]
# The image each pipeline step runs on: training (GPU instances) and serving (CPU instances).
IMAGES = {
    "TrainingImageUri": ("training", "gpu", "ml.g4dn.xlarge"),
    "InferenceImageUri": ("inference", "cpu", "ml.m5.large"),
}


@cache
def sdk_config() -> dict[str, Any]:
    spec = importlib.util.find_spec("sagemaker")
    assert spec is not None and spec.submodule_search_locations, (
        "the sagemaker SDK ([deploy] extra) is missing"
    )
    path = Path(spec.submodule_search_locations[0]) / "core" / "image_uri_config" / "pytorch.json"
    config: dict[str, Any] = json.loads(path.read_text())
    return config


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


@cache
def url_suffix(region: str) -> str:
    """AWS::URLSuffix of a region: its partition's DNS suffix in botocore's endpoint data."""
    from botocore.loaders import Loader

    for partition in Loader().load_data("endpoints")["partitions"]:
        if region in partition["regions"] or re.match(partition["regionRegex"], region):
            return str(partition["dnsSuffix"])
    raise AssertionError(f"{region} is in no botocore partition")


def _evaluate(value: Any, region: str, parameters: dict[str, str]) -> Any:
    """The few intrinsics the image substitutions use, as CloudFormation evaluates them."""
    if not isinstance(value, dict):
        return value
    ((function, argument),) = value.items()
    if function == "Ref":
        pseudo = {"AWS::Region": region, "AWS::URLSuffix": url_suffix(region)}
        defaults = {name: spec.get("Default") for name, spec in TEMPLATE["Parameters"].items()}
        return pseudo.get(argument, parameters.get(argument, defaults.get(argument)))
    if function == "Fn::FindInMap":
        name, top, second = (_evaluate(item, region, parameters) for item in argument)
        return TEMPLATE["Mappings"][name][top][second]
    if function == "Fn::If":
        condition, when_true, when_false = argument
        holds = _evaluate(TEMPLATE["Conditions"][condition], region, parameters)
        return _evaluate(when_true if holds else when_false, region, parameters)
    if function == "Fn::Not":
        return not _evaluate(argument[0], region, parameters)
    if function == "Fn::Equals":
        left, right = (_evaluate(item, region, parameters) for item in argument)
        return str(left) == str(right)
    if function == "Fn::Sub":
        text, variables = argument
        values = {name: _evaluate(item, region, parameters) for name, item in variables.items()}
        values |= {"AWS::Region": region, "AWS::URLSuffix": url_suffix(region)}
        return re.sub(r"\$\{([^}]+)\}", lambda match: str(values[match.group(1)]), text)
    raise AssertionError(f"{function} is not evaluated here")


def image_uri(name: str, region: str, parameters: dict[str, str] | None = None) -> str:
    return str(_evaluate(SUBSTITUTIONS[name], region, parameters or {}))


def _documented_regions() -> list[str]:
    """Regions where the SDK documents the pinned release for both images."""
    version = RELEASE["Version"]
    registries = [sdk_config()[scope]["versions"][version]["registries"] for scope, _, _ in IMAGES.values()]
    return sorted(set.intersection(*(set(r) for r in registries)))


def test_the_pinned_release_exists_for_gpu_training_and_cpu_inference() -> None:
    for name, (scope, processor, _instance) in IMAGES.items():
        entry = sdk_config()[scope]["versions"].get(RELEASE["Version"])
        assert entry is not None, f"{name}: the SDK has no {scope} image for PyTorch {RELEASE['Version']}"
        assert RELEASE["Python"] in entry["py_versions"], name
        assert processor in sdk_config()[scope]["processors"], name
        assert f"/{entry['repository']}:" in SUBSTITUTIONS[name]["Fn::If"][2]["Fn::Sub"][0], name


def test_the_pinned_release_is_the_newest_the_sdk_resolves_for_both_images() -> None:
    def releases(scope: str) -> set[str]:
        versions = sdk_config()[scope]["versions"]
        return {v for v, entry in versions.items() if RELEASE["Python"] in entry.get("py_versions", [])}

    common = releases("training") & releases("inference")

    assert max(common, key=_version_key) == RELEASE["Version"]


def test_the_mapping_covers_exactly_the_regions_the_sdk_documents_for_both_images() -> None:
    assert sorted(REGISTRY) == _documented_regions()


@pytest.mark.parametrize("region", _documented_regions())
def test_each_regions_registry_account_is_the_sdks(region: str) -> None:
    for scope, _, _ in IMAGES.values():
        expected = sdk_config()[scope]["versions"][RELEASE["Version"]]["registries"][region]
        assert REGISTRY[region]["Account"] == expected, scope


def test_the_image_uris_are_what_image_uris_retrieve_gives() -> None:
    # One region per registry account: every distinct URI shape (account, partition's domain, tag);
    # the test above already ties every region to its account.
    from sagemaker.core import image_uris

    one_per_account = {REGISTRY[region]["Account"]: region for region in _documented_regions()}
    mismatches = []
    for region in sorted(one_per_account.values()):
        for name, (scope, _processor, instance_type) in IMAGES.items():
            expected = image_uris.retrieve(
                framework="pytorch",
                region=region,
                version=RELEASE["Version"],
                py_version=RELEASE["Python"],
                instance_type=instance_type,
                image_scope=scope,
            )
            if image_uri(name, region) != expected:
                mismatches.append((region, name, image_uri(name, region), expected))
    assert mismatches == []


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_a_parameter_overrides_the_image(name: str) -> None:
    mine = "111122223333.dkr.ecr.eu-west-1.amazonaws.com/my-pytorch:latest"

    assert TEMPLATE["Parameters"][name]["Default"] == ""
    assert image_uri(name, "eu-west-1", {name: mine}) == mine
    assert image_uri(name, "eu-west-1", {name: ""}) != mine
