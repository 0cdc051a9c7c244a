"""The load benchmark's arithmetic without a cloud: which answers are documented, the percentiles,
the reconciliation of answers and dropped keys against counted store records, and the report."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter

import pytest

from dogbreed.bench.load_reconcile import RequestOutcome, StoreSnapshot, failures, reconcile, status_histogram
from dogbreed.bench.load_report import LoadReport, format_report, percentile
from dogbreed.bench.load_stores import dead_lettered_key, incoming_key_of
from dogbreed.local.lambda_runtime.invocation_record import InvocationResponse, invocation_record

DROPS = ["incoming/load-r1/00000.jpg", "incoming/load-r1/00001.jpg"]


def created(prediction_id: str, kind: str = "binary") -> RequestOutcome:
    return RequestOutcome(kind, 201, 0.1, prediction_id=prediction_id)


def busy() -> RequestOutcome:
    return RequestOutcome("base64", 503, 0.2, retry_after="5", error="endpoint_unavailable")


def complete_stores(ids: list[str], drops: list[str]) -> StoreSnapshot:
    return StoreSnapshot(
        api_result_ids=set(ids),
        api_item_ids=set(ids),
        drop_result_keys=Counter(drops),
        drop_items=Counter(drops),
    )


def rows_by_path(outcomes: list[RequestOutcome], drops: list[str], stores: StoreSnapshot) -> dict[str, tuple]:
    return {
        row.path: (
            row.sent,
            row.ok,
            row.unavailable,
            row.s3_results,
            row.dynamodb_items,
            row.lost,
            row.duplicated,
        )
        for row in reconcile(outcomes, drops, stores)
    }


# --- documented answers ----------------------------------------------------------------------------


def test_a_503_with_retry_after_is_documented() -> None:
    assert busy().documented


def test_a_503_without_retry_after_is_not_documented() -> None:
    assert not RequestOutcome("binary", 503, 0.2, error="endpoint_unavailable").documented


@pytest.mark.parametrize("status", [0, 400, 429, 500, 502, 504])
def test_other_non_2xx_answers_are_not_documented(status: int) -> None:
    assert not RequestOutcome("binary", status, 0.1, retry_after="5").documented


def test_failures_group_undocumented_answers_by_status_and_error() -> None:
    # Given two 502s from both body kinds, one 503 without Retry-After, and documented answers
    outcomes = [
        RequestOutcome("binary", 502, 0.1, error="endpoint_error"),
        RequestOutcome("base64", 502, 0.1, error="endpoint_error"),
        RequestOutcome("binary", 503, 0.1),
        created("a"),
        busy(),
    ]

    # When they are grouped
    groups = [(f.status, f.error, f.count, sorted(f.kinds)) for f in failures(outcomes)]

    # Then only the undocumented ones are named, the largest group first
    assert groups == [
        (502, "endpoint_error", 2, ["base64", "binary"]),
        (503, "503 without Retry-After", 1, ["binary"]),
    ]


def test_status_histogram_counts_each_status() -> None:
    assert status_histogram([created("a"), busy(), created("b")]) == {201: 2, 503: 1}


# --- percentiles -----------------------------------------------------------------------------------


def test_percentile_is_the_nearest_rank() -> None:
    values = [float(value) for value in range(1, 101)]  # 1..100
    assert (percentile(values, 50), percentile(values, 99), percentile(values, 100)) == (50.0, 99.0, 100.0)


def test_percentile_ignores_input_order() -> None:
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0


def test_percentile_of_one_value_is_that_value() -> None:
    assert percentile([7.0], 99) == 7.0


def test_percentile_of_nothing_is_nan() -> None:
    assert percentile([], 50) != percentile([], 50)  # NaN


# --- reconciliation ---------------------------------------------------------------------------------


def test_complete_stores_reconcile_with_nothing_lost_or_duplicated() -> None:
    # Given two 201s, one 503 and two drops, each with its S3 object and its item
    outcomes = [created("a"), created("b"), busy()]

    # When reconciled
    rows = rows_by_path(outcomes, DROPS, complete_stores(["a", "b"], DROPS))

    # Then every answer and every drop has exactly one record; the 503 needs none
    assert rows == {"API": (3, 2, 1, 2, 2, 0, 0), "S3 drop": (2, 2, None, 2, 2, 0, 0)}


def test_a_2xx_without_its_item_is_lost() -> None:
    stores = complete_stores(["a", "b"], DROPS)
    stores.api_item_ids.discard("b")
    assert rows_by_path([created("a"), created("b")], DROPS, stores)["API"][5] == 1


def test_a_2xx_without_its_s3_result_is_lost() -> None:
    stores = complete_stores(["a", "b"], DROPS)
    stores.api_result_ids.discard("a")
    assert rows_by_path([created("a"), created("b")], DROPS, stores)["API"][5] == 1


def test_a_2xx_without_a_prediction_id_is_lost() -> None:
    outcomes = [RequestOutcome("binary", 201, 0.1)]
    assert rows_by_path(outcomes, [], complete_stores([], []))["API"][5] == 1


def test_one_id_answered_twice_is_duplicated() -> None:
    rows = rows_by_path([created("a"), created("a")], [], complete_stores(["a"], []))
    assert rows["API"][5:] == (0, 1)


def test_a_dropped_image_in_the_dead_letter_queue_is_lost() -> None:
    # Given the second drop parked in the DLQ with no result
    stores = complete_stores([], DROPS[:1])
    stores.dead_lettered[DROPS[1]] += 1

    # Then it is lost, and still accounted for (processing ended)
    assert rows_by_path([], DROPS, stores)["S3 drop"][5] == 1
    assert stores.accounted(DROPS) == 2


def test_a_rejected_drop_is_lost() -> None:
    stores = complete_stores([], DROPS[:1])
    stores.rejected_keys.add(DROPS[1])
    assert rows_by_path([], DROPS, stores)["S3 drop"][5] == 1


def test_a_drop_stored_as_two_items_is_duplicated() -> None:
    stores = complete_stores([], DROPS)
    stores.drop_items[DROPS[0]] += 1
    assert rows_by_path([], DROPS, stores)["S3 drop"][4:] == (3, 0, 1)


def test_a_result_for_a_key_never_dropped_is_duplicated() -> None:
    stores = complete_stores([], DROPS)
    stores.drop_result_keys["incoming/load-r1/stray.jpg"] += 1
    assert rows_by_path([], DROPS, stores)["S3 drop"][6] == 1


def test_a_drop_with_its_object_but_not_yet_its_item_is_not_accounted_for() -> None:
    stores = complete_stores([], DROPS)
    del stores.drop_items[DROPS[0]]
    assert stores.accounted(DROPS) == 1


def test_stored_keys_map_back_to_the_dropped_key() -> None:
    assert incoming_key_of("results/load-r1/00001.jpg.json", "results/") == DROPS[1]
    assert incoming_key_of("rejected/load-r1/00001.jpg.json", "rejected/") == DROPS[1]


# --- the report ------------------------------------------------------------------------------------


def report_for(outcomes: list[RequestOutcome], stores: StoreSnapshot) -> LoadReport:
    return LoadReport(
        run_id="r1",
        api_url="http://127.0.0.1:3000",
        requests=len(outcomes),
        concurrency=2,
        drops=len(DROPS),
        api_seconds=2.0,
        drop_put_seconds=0.5,
        drops_settled_seconds=3.0,
        latencies_s=[outcome.latency_s for outcome in outcomes],
        statuses=status_histogram(outcomes),
        rows=reconcile(outcomes, DROPS, stores),
        rejected=len(stores.rejected_keys),
        dead_lettered=sum(stores.dead_lettered.values()),
        failures=failures(outcomes),
    )


def test_a_clean_run_passes_and_prints_its_figures() -> None:
    # Given a clean run of four answers in 2 s
    outcomes = [created("a"), created("b"), created("c"), busy()]
    report = report_for(outcomes, complete_stores(["a", "b", "c"], DROPS))

    # When it is formatted
    text = format_report(report)

    # Then it passes and prints throughput, percentiles, statuses and both table rows
    assert report.passed
    assert "2.0 req/s" in text
    assert "p50 100 ms, p99 200 ms" in text
    assert "201: 3, 503: 1" in text
    # path, then sent, ok, 503, S3 results, DynamoDB items, lost, duplicated
    lines = [line for line in text.splitlines() if line.startswith(("  API ", "  S3 drop "))]
    rows = {line[:12].strip(): line.split()[-7:] for line in lines}
    assert rows == {
        "API": ["4", "3", "1", "3", "3", "0", "0"],
        "S3 drop": ["2", "2", "-", "2", "2", "0", "0"],
    }
    assert text.endswith("PASS: 0 lost, 0 duplicated, 0 undocumented answers")


def test_a_run_with_an_undocumented_answer_fails_and_names_it() -> None:
    outcomes = [created("a"), RequestOutcome("binary", 502, 0.1, error="endpoint_error")]
    report = report_for(outcomes, complete_stores(["a"], DROPS))

    text = format_report(report)

    assert not report.passed
    assert "1 x status 502 endpoint_error (binary)" in text
    assert text.endswith("FAIL: 0 lost, 0 duplicated, 1 undocumented answers")


def test_a_run_with_a_lost_record_fails() -> None:
    stores = complete_stores(["a"], DROPS[:1])
    report = report_for([created("a")], stores)
    assert (report.passed, report.lost) == (False, 1)


def test_the_json_figures_carry_the_verdict_and_percentiles() -> None:
    report = report_for([created("a"), busy()], complete_stores(["a"], DROPS))
    document = report.to_dict()
    assert (document["passed"], document["p50_s"], document["p99_s"], document["lost"]) == (True, 0.1, 0.2, 0)


def object_created(key: str) -> dict[str, object]:
    return {"source": "aws.s3", "detail-type": "Object Created", "detail": {"object": {"key": key}}}


def test_a_dead_letter_from_the_functions_on_failure_destination_names_its_key() -> None:
    # Given the invocation record Lambda's OnFailure destination delivers (the event under requestPayload)
    record = invocation_record(
        request_id="r-1",
        function_arn="arn:aws:lambda:us-east-1:123456789012:function:predict-s3:live",
        condition="RetriesExhausted",
        approximate_invoke_count=3,
        request_payload=json.dumps(object_created(DROPS[0])).encode(),
        response=InvocationResponse(b'{"errorMessage": "the model endpoint is not available"}', "Unhandled"),
        timestamp=dt.datetime.now(dt.UTC),
    )

    # Then the key is read from the record's event
    assert dead_lettered_key(json.dumps(record)) == DROPS[0]


def test_a_dead_letter_from_eventbridge_names_its_key() -> None:
    # EventBridge's dead-letter queue holds the bare event
    assert dead_lettered_key(json.dumps(object_created(DROPS[1]))) == DROPS[1]


def test_an_unreadable_dead_letter_names_no_key() -> None:
    assert dead_lettered_key("not json") == ""
