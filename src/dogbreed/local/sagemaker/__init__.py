"""Local SageMaker: training and tuning jobs as real processes, endpoints as real model servers, the
SageMaker and sagemaker-runtime APIs on loopback, and target-tracking auto scaling. See
docs/local-sagemaker.md.

`LocalSageMaker` is imported on first use, so that a light module of this package (`processes`, which
the CLI's `local` commands need) does not load the whole backend."""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dogbreed.local.sagemaker.backend import LocalSageMaker

__all__ = ["LocalSageMaker"]


def __getattr__(name: str) -> Any:
    if name == "LocalSageMaker":
        from dogbreed.local.sagemaker.backend import LocalSageMaker

        return LocalSageMaker
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
