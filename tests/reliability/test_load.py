"""The load test on the shared local cloud: API requests (binary and base64 JSON) at a fixed
concurrency while images are dropped under a run-unique prefix, then the stores are counted with
`dogbreed bench load`'s own reconciliation. Small in `make test`; 2,000 requests at concurrency 32
plus 500 drops under `make reliability`."""

from __future__ import annotations

import pytest

from dogbreed.bench.load import LoadReport, format_report, run_load
from tests.reliability.conftest import CloudWorld, scaled

REQUESTS = scaled(200, 2000)
CONCURRENCY = scaled(8, 32)
DROPS = scaled(50, 500)
SETTLE_SECONDS = scaled(600, 1800)


@pytest.fixture(scope="module")
def load_report(cloud_world: CloudWorld) -> LoadReport:
    report = run_load(
        cloud_world.state,
        requests=REQUESTS,
        concurrency=CONCURRENCY,
        drops=DROPS,
        settle_seconds=SETTLE_SECONDS,
    )
    print("\n" + format_report(report))
    return report


def test_every_request_gets_a_2xx_or_a_503_with_retry_after(load_report: LoadReport) -> None:
    assert [(f.status, f.error, f.count) for f in load_report.failures] == []


def test_every_request_was_answered(load_report: LoadReport) -> None:
    assert sum(load_report.statuses.values()) == REQUESTS


def test_the_api_stored_predictions_under_load(load_report: LoadReport) -> None:
    # Without this, a run where every request got 503 would reconcile trivially.
    api = next(row for row in load_report.rows if row.path == "API")
    assert api.ok > 0


def test_every_dropped_image_is_accounted_for_within_the_wait(load_report: LoadReport) -> None:
    assert load_report.drops_settled_seconds is not None


def test_no_record_is_lost(load_report: LoadReport) -> None:
    assert {row.path: row.lost for row in load_report.rows} == {"API": 0, "S3 drop": 0}


def test_no_record_is_duplicated(load_report: LoadReport) -> None:
    assert {row.path: row.duplicated for row in load_report.rows} == {"API": 0, "S3 drop": 0}


def test_every_dropped_image_has_its_result_and_its_item(load_report: LoadReport) -> None:
    drops = next(row for row in load_report.rows if row.path == "S3 drop")
    assert (drops.ok, drops.s3_results, drops.dynamodb_items) == (DROPS, DROPS, DROPS)


def test_nothing_of_the_run_is_rejected_or_dead_lettered(load_report: LoadReport) -> None:
    assert (load_report.rejected, load_report.dead_lettered) == (0, 0)
