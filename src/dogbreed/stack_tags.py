"""The tag that ties a resource created at run time (the pipeline's SageMaker models, endpoint
configs and endpoint) to the stack that created it: key `dogbreed:stack`, value the stack name.
CloudFormation does not own those resources; `dogbreed teardown` finds them by this tag."""

from __future__ import annotations

from typing import Final

STACK_TAG_KEY: Final = "dogbreed:stack"


def stack_tag(stack_name: str) -> dict[str, str]:
    """The tag in the shape SageMaker's APIs take (`Tags=[stack_tag(name)]`)."""
    return {"Key": STACK_TAG_KEY, "Value": stack_name}
