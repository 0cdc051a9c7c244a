"""Local SageMaker: training and tuning jobs as real processes, endpoints as real model servers, the
SageMaker and sagemaker-runtime APIs on loopback, and target-tracking auto scaling. See
docs/local-sagemaker.md."""

from dogbreed.local.sagemaker.backend import LocalSageMaker

__all__ = ["LocalSageMaker"]
