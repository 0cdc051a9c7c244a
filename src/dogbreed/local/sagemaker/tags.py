"""Tags of the local SageMaker's resources, by ARN: the `Tags` of each Create* request, AddTags /
ListTags / DeleteTags, and forgotten with the resource (DeleteModel, DeleteEndpoint, ...).

Only the resource types the local SageMaker owns are answered here (`answers`); the SageMaker API front
door passes the tag calls of any other ARN (a model package group, say) on to moto.
"""

from __future__ import annotations

import threading
from typing import Any

from dogbreed.local.sagemaker._aws import api_error, not_found

LOCAL_RESOURCE_TYPES = frozenset(
    {"training-job", "hyper-parameter-tuning-job", "model", "endpoint-config", "endpoint"}
)
MAX_TAGS_PER_RESOURCE = 50


def resource_type(arn: str) -> str:
    """`arn:aws:sagemaker:<region>:<account>:<type>/<name>` -> `<type>` ("" for anything else)."""
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[2] != "sagemaker":
        return ""
    return parts[5].partition("/")[0]


class TagStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tags: dict[str, dict[str, str]] = {}

    @staticmethod
    def answers(arn: str) -> bool:
        return resource_type(arn) in LOCAL_RESOURCE_TYPES

    def register(self, arn: str, tags: list[dict[str, str]]) -> None:
        """A new resource with its create request's tags."""
        with self._lock:
            self._tags[arn] = {tag["Key"]: tag["Value"] for tag in tags}

    def forget(self, arn: str) -> None:
        with self._lock:
            self._tags.pop(arn, None)

    def _resource(self, arn: str, operation: str) -> dict[str, str]:
        # The caller holds the lock.
        if arn not in self._tags:
            raise not_found(operation)
        return self._tags[arn]

    # ----------------------------------------------------------------- API

    def add_tags(self, **request: Any) -> dict[str, Any]:
        with self._lock:
            tags = self._resource(request["ResourceArn"], "AddTags")
            merged = {**tags, **{tag["Key"]: tag["Value"] for tag in request["Tags"]}}
            if len(merged) > MAX_TAGS_PER_RESOURCE:
                raise api_error(
                    "AddTags",
                    "ResourceLimitExceeded",
                    f"A resource can have at most {MAX_TAGS_PER_RESOURCE} tags.",
                )
            tags.update(merged)
        return {"Tags": request["Tags"]}

    def list_tags(self, **request: Any) -> dict[str, Any]:
        with self._lock:
            tags = self._resource(request["ResourceArn"], "ListTags")
            # MaxResults is at least 50, the most tags a resource has: one page holds them all.
            return {"Tags": [{"Key": key, "Value": value} for key, value in tags.items()]}

    def delete_tags(self, **request: Any) -> dict[str, Any]:
        with self._lock:
            tags = self._resource(request["ResourceArn"], "DeleteTags")
            for key in request["TagKeys"]:
                tags.pop(key, None)
        return {}
