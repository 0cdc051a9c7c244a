"""Region and images: the region is in the template's DlcRegistry mapping and the PyTorch images the
template builds for it exist there."""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache
from typing import Any, Final

from botocore.exceptions import BotoCoreError, ClientError

from dogbreed.preflight.account import Account, Check, NoAnswer, Status, ask, unverified_reason
from dogbreed.template_stack import TemplateError, TemplateStack

# The state machine substitutions that carry the PyTorch image URIs (template.yaml builds them from
# Mappings DlcRegistry and PyTorchRelease unless TrainingImageUri / InferenceImageUri are given).
IMAGE_SUBSTITUTIONS: Final = {"training image": "TrainingImageUri", "inference image": "InferenceImageUri"}
_ECR_IMAGE = re.compile(
    r"^(?P<registry>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.[a-z0-9.]+/(?P<repository>[^:@]+):(?P<tag>[^:@]+)$"
)


@cache
def url_suffix(region: str) -> str:
    """AWS::URLSuffix of a region: its partition's DNS suffix in botocore's endpoint data."""
    from botocore.loaders import Loader

    for partition in Loader().load_data("endpoints")["partitions"]:
        if region in partition["regions"] or re.match(partition["regionRegex"], region):
            return str(partition["dnsSuffix"])
    return "amazonaws.com"


def image_uris(stack: TemplateStack, region: str) -> dict[str, str]:
    """The image URIs the template gives the pipeline in `region` (TemplateError where the template
    cannot build one there: a region outside DlcRegistry)."""
    regional = TemplateStack(
        stack.template,
        {**stack.parameters, "AWS::Region": region, "AWS::URLSuffix": url_suffix(region)},
        stack.stack_name,
    )
    substitutions = next(
        resource["Properties"]["DefinitionSubstitutions"]
        for resource in stack.resources.values()
        if "TrainingImageUri" in resource.get("Properties", {}).get("DefinitionSubstitutions", {})
    )
    return {label: str(regional.resolve(substitutions[key])) for label, key in IMAGE_SUBSTITUTIONS.items()}


def check_region(stack: TemplateStack, region: str) -> Check:
    registries = stack.template.get("Mappings", {}).get("DlcRegistry", {})
    own_images = all(stack.parameters.get(key) for key in IMAGE_SUBSTITUTIONS.values())
    if region in registries or own_images:
        return Check(
            "region",
            region,
            "in template.yaml's DlcRegistry mapping",
            Status.OK,
        )
    return Check(
        "region",
        region,
        "in template.yaml's DlcRegistry mapping",
        Status.FIX,
        "the PyTorch images are resolved from that mapping: choose one of its regions (--region, or "
        "region in samconfig.toml), or pass TrainingImageUri= and InferenceImageUri= overrides",
    )


def _image_found(account: Account, match: re.Match[str]) -> bool:
    request: dict[str, Any] = {
        "registryId": match["registry"],
        "repositoryName": match["repository"],
        "imageIds": [{"imageTag": match["tag"]}],
    }
    try:
        described = ask(account, "ecr", "describe_images", region=match["region"], **request)
        return bool(described.get("imageDetails"))
    except NoAnswer as no_answer:
        if not no_answer.denied:
            raise
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in (
            "ImageNotFoundException",
            "RepositoryNotFoundException",
        ):
            return False
        raise
    # DescribeImages denied: a pull of the manifest (what SageMaker does) answers too.
    try:
        pulled = ask(account, "ecr", "batch_get_image", region=match["region"], **request)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "RepositoryNotFoundException":
            return False
        raise
    return bool(pulled.get("images"))


def image_checks(stack: TemplateStack, account: Account) -> Iterator[Check]:
    try:
        uris = image_uris(stack, account.region)
    except TemplateError:
        for label in IMAGE_SUBSTITUTIONS:
            yield Check(
                label,
                "-",
                f"a PyTorch image in {account.region}",
                Status.FIX,
                f"no DlcRegistry account for {account.region}: see the region check",
            )
        return
    for label, uri in uris.items():
        match = _ECR_IMAGE.match(uri)
        if match is None:
            yield Check(
                label, uri, "an ECR image", Status.UNVERIFIED, "not an ECR image URI: check it yourself"
            )
            continue
        short = f"{match['registry']}/{match['repository']}:{match['tag']}"
        needed = f"exists in {match['region']}"
        try:
            found = _image_found(account, match)
        except (NoAnswer, ClientError, BotoCoreError) as error:
            yield Check(label, short, needed, Status.UNVERIFIED, unverified_reason(error))
            continue
        if found:
            yield Check(label, short, needed, Status.OK)
        else:
            yield Check(
                label,
                short,
                needed,
                Status.FIX,
                f"{uri} does not exist: choose a region of the DlcRegistry mapping, or pass "
                "TrainingImageUri= / InferenceImageUri= overrides",
            )
