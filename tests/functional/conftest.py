"""Fixtures of the pipeline's functional tests (test_pipeline_*.py): AWS credentials for moto, a tiny
synthetic dataset, the Lambda workers and `stack`, which builds a pipeline on the in-memory SageMaker
and checks every Task request of every execution it waits for against botocore's input shapes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dogbreed.data.synth import synthesize
from dogbreed.local.lambda_runtime.runtime import LambdaRuntime
from tests.functional.fake_sagemaker import FakeSageMaker, Outcomes
from tests.functional.pipeline_harness import (
    DATASET_ID,
    Pipeline,
    check_requests,
    lambda_runtime,
    pipeline_stack,
)


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthesize(
        tmp_path_factory.mktemp("data") / DATASET_ID, classes=2, per_class=4, size=32, dataset_id=DATASET_ID
    )


@pytest.fixture(scope="module")
def lambdas() -> Iterator[LambdaRuntime]:
    with lambda_runtime() as runtime:  # warm workers are kept between the module's tests
        yield runtime


@pytest.fixture
def stack(dataset: Path, lambdas: LambdaRuntime, aws_env: None) -> Iterator[Any]:
    """Build a pipeline with a backend and parameters; its dataset (and code) already uploaded."""
    contexts: list[Any] = []

    def make(outcomes: Outcomes | None = None, *, code: bool = True, **parameters: str) -> Pipeline:
        context = pipeline_stack(FakeSageMaker(outcomes or Outcomes()), lambdas, **parameters)
        contexts.append(context)
        pipeline = context.__enter__()
        pipeline.upload(dataset, code=code)
        original_wait = pipeline.wait

        def checked_wait(execution_arn: str, **kwargs: Any) -> dict[str, Any]:
            described = original_wait(execution_arn, **kwargs)
            check_requests(pipeline, execution_arn)
            return described

        pipeline.wait = checked_wait  # type: ignore[method-assign]
        return pipeline

    yield make
    for context in reversed(contexts):
        context.__exit__(None, None, None)
