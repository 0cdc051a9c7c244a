"""Local SageMaker: training and tuning jobs as real processes, endpoints as real model servers, the
sagemaker-runtime API on loopback, and target-tracking auto scaling. See docs/local-sagemaker.md."""

from dogbreed.local.sagemaker.backend import OPERATIONS, LocalSageMaker

__all__ = ["OPERATIONS", "LocalSageMaker"]
