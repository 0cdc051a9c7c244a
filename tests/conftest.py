"""Suite-wide rules: the shared fixtures (tests/support/fixtures.py), no skips, and the pytest-xdist
work groups. Test modules never import this file; shared helpers are in tests/support/."""

from __future__ import annotations

import os
from collections.abc import Generator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from xdist.scheduler import LoadScopeScheduling

if TYPE_CHECKING:
    from xdist.remote import Producer

pytest_plugins = ["tests.support.fixtures"]

TESTS_DIR = Path(__file__).parent
# pytest-xdist work groups: every test of a group runs in one worker, one after the other; the tests of
# any other module run in one worker too, in file order (module fixtures are set up once, and a test
# may build on the one before it as it does in a plain run). Keyed by path from the repository root (a
# trailing / is a folder).
# The tests of the session's local cloud (the `cloud_world` fixture): one cloud per worker, so one
# worker runs them all and the cloud boots once.
LOCAL_CLOUD_GROUP = "local-cloud"
LOCAL_CLOUD_FIXTURE = "cloud_world"
# Tests that train models, run the whole pipeline or measure throughput: two lanes, each one test at a
# time, so at most two of them share the 2 cores (one intra-op thread per process under xdist, see
# pytest_configure) and their timeouts hold.
PIPELINE_GROUP = "whole-pipeline"
TRAINING_GROUP = "training"
GROUPS: dict[str, tuple[str, ...]] = {
    LOCAL_CLOUD_GROUP: (
        "tests/integration/test_local_cloud_inference.py",
        "tests/integration/test_batch_transform.py",
        "tests/reliability/",
    ),
    PIPELINE_GROUP: (
        "tests/e2e/",
        "tests/integration/test_bench_endpoint.py",
    ),
    TRAINING_GROUP: (
        "tests/integration/test_training_accuracy.py",
        "tests/integration/test_training_distributed.py",
        "tests/integration/test_local_sagemaker_training.py",
        "tests/integration/test_local_sagemaker_tuning.py",
    ),
}


def group_of(nodeid: str) -> str | None:
    path = nodeid.split("::", 1)[0]
    for group, places in GROUPS.items():
        if any(path == place or (place.endswith("/") and path.startswith(place)) for place in places):
            return group
    return None


class GroupScheduling(LoadScopeScheduling):
    """pytest-xdist's scope scheduling with this suite's GROUPS, then modules, as the scopes. (xdist's
    own loadgroup does not group on pytest 9.2: it renames node ids, which pytest now ignores,
    pytest-xdist #1386.)"""

    def _split_scope(self, nodeid: str) -> str:
        return group_of(nodeid) or nodeid.split("::", 1)[0]


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Producer) -> GroupScheduling:
    return GroupScheduling(config, log)


def pytest_configure(config: pytest.Config) -> None:
    # Two or more xdist workers share the cores: one intra-op thread per torch/ONNX process (training
    # jobs, model servers, the local SageMaker's containers inherit it), or OpenMP's spinning threads
    # burn the core the other worker needs.
    if int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) > 1:
        os.environ.setdefault("OMP_NUM_THREADS", "1")


NO_SKIPS = "a skip hides a gap: the suite allows none (make it pass, fail, or remove it)"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if (
            LOCAL_CLOUD_FIXTURE in getattr(item, "fixturenames", ())
            and group_of(item.nodeid) != LOCAL_CLOUD_GROUP
        ):
            raise pytest.UsageError(
                f"{item.nodeid} uses the shared local cloud: add its file to GROUPS[{LOCAL_CLOUD_GROUP!r}] "
                "in tests/conftest.py, or two workers would each boot a cloud"
            )


def _reason(report: pytest.TestReport | pytest.CollectReport) -> str:
    # A skip's longrepr is (path, line, "Skipped: reason").
    return str(report.longrepr[2]) if isinstance(report.longrepr, tuple) else str(report.longrepr)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"{item.nodeid} was skipped ({_reason(report)}): {NO_SKIPS}"
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(
    collector: pytest.Collector,
) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
    report = yield
    if report.skipped:
        report.outcome = "failed"
        report.longrepr = f"{collector.nodeid} was skipped at collection ({_reason(report)}): {NO_SKIPS}"
    return report
