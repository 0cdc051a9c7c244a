"""The model registry is moto's (the local SageMaker does not implement model packages); one of its
answers differs from SageMaker's and is mended here, pinned to moto 5.2.5 and self-checked.

UpdateModelPackage: SageMaker adds or overwrites the `CustomerMetadataProperties` it is given and
removes the keys in `CustomerMetadataPropertiesToRemove` ("The metadata properties associated with
the model package versions", SageMaker API reference); moto 5.2.5 replaces the whole map with the
request's, so approving a package without repeating its metadata erased its test accuracy. Its
approval description is likewise kept when an update does not give one.
"""

from __future__ import annotations

import inspect
from typing import Any, Final

from moto.sagemaker.models import SageMakerModelBackend

_ORIGINAL: Final = SageMakerModelBackend.update_model_package
_PARAMETERS: Final = [
    "self",
    "model_package_arn",
    "model_approval_status",
    "approval_description",
    "customer_metadata_properties",
    "customer_metadata_properties_to_remove",
    "additional_inference_specifications_to_add",
]


def _update_model_package(
    self: Any,
    model_package_arn: str,
    model_approval_status: str | None,
    approval_description: str | None,
    customer_metadata_properties: dict[str, str] | None,
    customer_metadata_properties_to_remove: list[str],
    additional_inference_specifications_to_add: list[Any] | None,
) -> str:
    name = self.model_package_name_mapping.get(model_package_arn, model_package_arn)
    package = self.model_packages.get(name)
    merged = dict(getattr(package, "customer_metadata_properties", None) or {}) if package else {}
    merged.update(customer_metadata_properties or {})
    description = approval_description
    if description is None and package is not None:
        description = package.approval_description
    result: str = _ORIGINAL(
        self,
        model_package_arn,
        model_approval_status,
        description,
        merged or None,
        customer_metadata_properties_to_remove,
        additional_inference_specifications_to_add,
    )
    return result


def check_moto_internals() -> list[str]:
    problems = []
    current = SageMakerModelBackend.update_model_package
    if current not in (_ORIGINAL, _update_model_package):
        problems.append("SageMakerModelBackend.update_model_package was replaced by someone else")
    if list(inspect.signature(_ORIGINAL).parameters) != _PARAMETERS:
        problems.append("moto's update_model_package changed its signature: re-check this fix")
    return problems


def install() -> None:
    problems = check_moto_internals()
    if problems:
        raise RuntimeError("moto's SageMaker model registry changed: " + "; ".join(problems))
    SageMakerModelBackend.update_model_package = _update_model_package  # type: ignore[method-assign]
