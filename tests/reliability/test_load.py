"""The load test on the session's local cloud: API requests (binary and base64 JSON) at a fixed
concurrency while images are dropped under a run-unique prefix, driven by `dogbreed bench load`'s own
driver. The outcome is counted by the test itself, from the stores: results/ and rejected/ objects,
Predictions items and the S3 function's dead-letter queue. And the product's reconciliation is shown to
notice a record deleted behind its back. Small in `make test`; 2,000 requests at concurrency 32 plus 500
drops under `make reliability`."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest
from prediction.item import from_item, item_key

from dogbreed.bench.load import run_load
from dogbreed.bench.load_reconcile import reconcile
from dogbreed.bench.load_report import LoadReport, format_report
from dogbreed.bench.load_stores import Stores
from tests.support.local_cloud import CloudWorld
from tests.support.scale import scaled
from tests.support.stores import (
    API_RESULTS_PREFIX,
    ApiSnapshot,
    DropReconciliation,
    api_snapshot,
    dead_letter_keys,
    object_keys,
    reconcile_drops,
    result_key,
)

REQUESTS = scaled(200, 2000)
CONCURRENCY = scaled(8, 32)
DROPS = scaled(50, 500)
SETTLE_SECONDS = scaled(600, 1800)
CREATED = 201
BUSY = 503


@dataclass(frozen=True)
class LoadRun:
    """The driver's report (the HTTP answers) and the stores as the test read them."""

    report: LoadReport
    prefix: str  # load-<run id>: the drops are incoming/<prefix>/...
    dropped: list[str]
    api_before: ApiSnapshot
    api_after: ApiSnapshot
    drops: DropReconciliation
    dead_lettered: list[str]


@pytest.fixture(scope="module")
def load_run(cloud_world: CloudWorld) -> LoadRun:
    run_id = f"test-{uuid.uuid4().hex[:8]}"
    before = api_snapshot(cloud_world)
    report = run_load(
        cloud_world.state,
        requests=REQUESTS,
        concurrency=CONCURRENCY,
        drops=DROPS,
        settle_seconds=SETTLE_SECONDS,
        run_id=run_id,
    )
    print("\n" + format_report(report))
    prefix = f"load-{run_id}"
    dropped = object_keys(cloud_world, f"incoming/{prefix}/")
    return LoadRun(
        report=report,
        prefix=prefix,
        dropped=dropped,
        api_before=before,
        api_after=api_snapshot(cloud_world),
        drops=reconcile_drops(cloud_world, prefix, dropped),
        dead_lettered=dead_letter_keys(cloud_world, f"incoming/{prefix}/"),
    )


def test_every_request_gets_a_201_or_a_503_with_retry_after(load_run: LoadRun) -> None:
    assert set(load_run.report.statuses) <= {CREATED, BUSY}, load_run.report.statuses
    assert [(f.status, f.error, f.count) for f in load_run.report.failures] == []


def test_every_request_was_answered(load_run: LoadRun) -> None:
    assert sum(load_run.report.statuses.values()) == REQUESTS


def test_every_201_has_exactly_one_result_object_and_one_item(load_run: LoadRun) -> None:
    created = load_run.report.statuses.get(CREATED, 0)
    new_results = load_run.api_after.results - load_run.api_before.results
    new_items = {
        prediction_id: key
        for prediction_id, key in load_run.api_after.items.items()
        if prediction_id not in load_run.api_before.items
    }
    # Without the first check, a run where every request got 503 would reconcile trivially.
    assert created > 0
    assert (len(new_results), len(new_items)) == (created, created)
    assert {f"{API_RESULTS_PREFIX}{prediction_id}.json" for prediction_id in new_items} == new_results
    assert set(new_items.values()) == new_results


def test_every_dropped_image_has_exactly_one_result_object_and_one_item(load_run: LoadRun) -> None:
    assert len(load_run.dropped) == DROPS
    assert sum(load_run.drops.results.values()) == sum(load_run.drops.items.values()) == DROPS
    assert load_run.drops.exactly_one_record_each(load_run.dropped)


def test_nothing_of_the_run_is_rejected_or_dead_lettered(load_run: LoadRun) -> None:
    assert (sum(load_run.drops.rejected.values()), load_run.dead_lettered) == (0, [])


def test_the_reconciliation_notices_an_item_deleted_behind_its_back(
    cloud_world: CloudWorld, load_run: LoadRun
) -> None:
    stores = Stores.for_state(cloud_world.state)
    run_prefix = f"{load_run.prefix}/"
    # Given the product's reconciliation agrees with the stores for the run's drops
    drops_row = reconcile([], load_run.dropped, stores.snapshot(run_prefix, set()))[1]
    assert (drops_row.ok, drops_row.lost) == (DROPS, 0)
    # When one drop's Predictions item is deleted behind its back
    dynamodb, table = cloud_world.client("dynamodb"), cloud_world.outputs["PredictionsTableName"]
    victim = next(
        item
        for page in dynamodb.get_paginator("scan").paginate(TableName=table, ConsistentRead=True)
        for item in page["Items"]
        if from_item(item).result_key == result_key(load_run.dropped[0])
    )
    dynamodb.delete_item(TableName=table, Key=item_key(from_item(victim).record.prediction_id))
    try:
        # Then it counts that drop as lost
        drops_row = reconcile([], load_run.dropped, stores.snapshot(run_prefix, set()))[1]
        assert (drops_row.ok, drops_row.lost, drops_row.dynamodb_items) == (DROPS - 1, 1, DROPS - 1)
    finally:
        dynamodb.put_item(TableName=table, Item=victim)
