"""Fixtures shared by the Lambda unit tests: one moto-backed world per test module, reset per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.lambda_world import LambdaWorld, lambda_world


@pytest.fixture(scope="module")
def module_world() -> Iterator[LambdaWorld]:
    with lambda_world() as created:
        yield created


@pytest.fixture
def world(module_world: LambdaWorld) -> LambdaWorld:
    module_world.reset()
    return module_world
