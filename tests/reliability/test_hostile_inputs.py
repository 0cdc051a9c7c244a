"""The hostile-input corpus (`hostile_corpus.py`) against every entry point of the shared local cloud.

For each case at each entry point it applies to: the declared outcome; for a client error, no account
id, ARN or traceback in what the client is shown nor in any log line the cloud wrote meanwhile; and a
good request answered correctly afterwards. Each case is sent once and the three tests read that one
run. The S3 drop uploads every case in one batch, then waits for all records at once.

`pytest -s` prints cases tried / passed per entry point when the module ends.
"""

from __future__ import annotations

import json
import posixpath
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import httpx
import pytest
from prediction import url_guard
from request_guards.errors import InputError

from tests.reliability.hostile_corpus import (
    ACCEPTED,
    NOT_TRIGGERED,
    Case,
    Entry,
    Outcome,
    Redirect,
    SlowDrip,
    cases_for,
    good_image,
)
from tests.reliability.hostile_runners import (
    HTTP_TIMEOUT,
    DirectInvoke,
    DropRecords,
    LogWatch,
    Observed,
    drop_all,
    drop_key,
    good_request_top_class,
    http_entries,
    leaks,
    wait_for_records,
)
from tests.reliability.redirect_server import public_or_test_server, redirect_server, redirect_url
from tests.support.local_cloud import CloudWorld

GOOD_CLASS = 1  # good_image() is the tiny model's class 1
REMOTE = (Entry.API_JSON, Entry.API_BINARY, Entry.INVOCATIONS, Entry.DIRECT_INVOKE)
SENTINEL_KEY = "incoming/hostile/zz-good-image-after-the-batch.jpg"
# The drip sends a byte every 50 ms, far inside the read timeout: only the total deadline can end it.
READ_TIMEOUT_S = 2.0
TOTAL_TIMEOUT_S = 1.0


def _params(entries: tuple[Entry, ...], *, client_errors_only: bool = False) -> list[object]:
    return [
        pytest.param(entry, case, id=f"{entry}:{case.name}")
        for entry in entries
        for case in cases_for(entry)
        if not client_errors_only or case.expect[entry].is_client_error
    ]


@dataclass
class CaseRun:
    observed: Observed
    good_class: int | None  # the good request's top class afterwards (None: not answered)


@dataclass
class Tally:
    """Per entry point: case name -> passed (declared outcome, no leak, good request answered)."""

    passed: dict[Entry, dict[str, bool]] = field(default_factory=dict)

    def record(self, entry: Entry, case: Case, run: CaseRun) -> None:
        expected = case.expect[entry]
        clean = not expected.is_client_error or not run.observed.leaks()
        ok = run.observed.outcome == expected and clean and run.good_class == GOOD_CLASS
        self.passed.setdefault(entry, {})[case.name] = ok

    def table(self) -> str:
        lines = ["", f"{'entry point':<15} {'tried':>6} {'passed':>7}"]
        for entry in Entry:
            results = self.passed.get(entry, {})
            lines.append(f"{entry:<15} {len(results):>6} {sum(results.values()):>7}")
        total = [ok for results in self.passed.values() for ok in results.values()]
        lines.append(f"{'all':<15} {len(total):>6} {sum(total):>7}")
        failed = [
            f"{e}:{name}" for e, results in self.passed.items() for name, ok in results.items() if not ok
        ]
        if failed:
            lines.append("failed: " + ", ".join(failed))
        return "\n".join(lines)


@pytest.fixture(scope="module")
def tally() -> Iterator[Tally]:
    results = Tally()
    yield results
    print("\nhostile-input corpus, cases tried / passed per entry point:" + results.table())


@pytest.fixture(scope="module")
def remote_runs(cloud_world: CloudWorld, tally: Tally) -> Iterator[Callable[[Entry, Case], CaseRun]]:
    """Runs a case once at an HTTP entry point or the direct invoke, then a good request; memoised."""
    watch = LogWatch(cloud_world.state_dir)
    direct = DirectInvoke(cloud_world)
    runs: dict[tuple[Entry, str], CaseRun] = {}
    with httpx.Client(timeout=HTTP_TIMEOUT) as client:
        entries = http_entries(cloud_world, client)

        def run(entry: Entry, case: Case) -> CaseRun:
            if (entry, case.name) not in runs:
                mark = watch.mark()
                if entry is Entry.DIRECT_INVOKE:
                    outcome, shown = direct.send(case)
                    good_class = direct.good_top_class()
                else:
                    outcome, shown = entries[entry].read(entries[entry].send(case.payload))
                    good_class = good_request_top_class(entries[entry].good())
                # The log window closes after the good request: a line logged late still lands in it.
                runs[entry, case.name] = CaseRun(Observed(outcome, shown, watch.since(mark)), good_class)
                tally.record(entry, case, runs[entry, case.name])
            return runs[entry, case.name]

        yield run


@pytest.mark.parametrize(("entry", "case"), _params(REMOTE))
def test_case_gets_its_declared_outcome(
    remote_runs: Callable[[Entry, Case], CaseRun], entry: Entry, case: Case
) -> None:
    # Given a hostile input, When it is sent to the entry point
    observed = remote_runs(entry, case).observed
    # Then the client gets exactly the declared status and code
    assert observed.outcome == case.expect[entry]


@pytest.mark.parametrize(("entry", "case"), _params(REMOTE, client_errors_only=True))
def test_client_error_shows_and_logs_no_account_arn_or_traceback(
    remote_runs: Callable[[Entry, Case], CaseRun], entry: Entry, case: Case
) -> None:
    # Given a refused input, When it is sent
    observed = remote_runs(entry, case).observed
    # Then neither the answer nor the cloud's logs name the account, an ARN or a stack frame
    assert observed.leaks() == []


@pytest.mark.parametrize(("entry", "case"), _params(REMOTE))
def test_service_still_answers_a_good_request_afterwards(
    remote_runs: Callable[[Entry, Case], CaseRun], entry: Entry, case: Case
) -> None:
    # Given the entry point has just handled a hostile input, When a good image follows
    # Then it is classified correctly
    assert remote_runs(entry, case).good_class == GOOD_CLASS


# ------------------------------------------------------------------------------------------ S3 drop


@dataclass
class DropBatch:
    records: DropRecords
    logged: str


@pytest.fixture(scope="module")
def drop_batch(cloud_world: CloudWorld, tally: Tally) -> Iterator[DropBatch]:
    """Every S3 case uploaded at once, then a good image; waits until all of them have records."""
    cases = cases_for(Entry.S3_DROP)
    watch = LogWatch(cloud_world.state_dir)
    mark = watch.mark()
    drop_all(cloud_world, cases)
    s3 = cloud_world.client("s3")
    bucket = cloud_world.outputs["InferenceBucketName"]
    s3.put_object(Bucket=bucket, Key=SENTINEL_KEY, Body=good_image())
    triggered = [drop_key(case) for case in cases if case.expect[Entry.S3_DROP].code != NOT_TRIGGERED]
    records = wait_for_records(cloud_world, [*triggered, SENTINEL_KEY])
    batch = DropBatch(records, watch.since(mark))
    sentinel_ok = _sentinel_class(batch.records) == GOOD_CLASS
    for case in cases:
        key = drop_key(case)
        run = CaseRun(
            Observed(records.outcome(key), json.dumps(records.documents(key)), batch.logged),
            GOOD_CLASS if sentinel_ok else None,
        )
        tally.record(Entry.S3_DROP, case, run)
    yield batch
    _delete_batch_objects(cloud_world, records, [*(drop_key(case) for case in cases), SENTINEL_KEY])


def _sentinel_class(records: DropRecords) -> int | None:
    documents = records.documents(SENTINEL_KEY)
    if not documents or "predictions" not in documents[0]:
        return None
    return int(documents[0]["predictions"][0]["class_index"])


def _delete_batch_objects(world: CloudWorld, records: DropRecords, keys: list[str]) -> None:
    """Leave the shared bucket as it was: the dropped objects and their records go."""
    s3 = world.client("s3")
    bucket = world.outputs["InferenceBucketName"]
    outputs = [document["_key"] for key in keys for document in records.documents(key)]
    for key in [*keys, *outputs]:
        s3.delete_object(Bucket=bucket, Key=key)


@pytest.mark.parametrize(("entry", "case"), _params((Entry.S3_DROP,)))
def test_dropped_object_gets_its_declared_record(drop_batch: DropBatch, entry: Entry, case: Case) -> None:
    # Given the object was dropped, When the trigger has run, Then its record is the declared one
    assert drop_batch.records.outcome(drop_key(case)) == case.expect[entry]


@pytest.mark.parametrize(("entry", "case"), _params((Entry.S3_DROP,)))
def test_dropped_object_has_exactly_one_record_or_none_when_not_triggered(
    drop_batch: DropBatch, entry: Entry, case: Case
) -> None:
    # Given the object was dropped, When the trigger has run
    count = len(drop_batch.records.documents(drop_key(case)))
    # Then it has one record (nothing silently dropped, nothing doubled), or none outside incoming/
    assert count == (0 if case.expect[entry].code == NOT_TRIGGERED else 1)


@pytest.mark.parametrize(("entry", "case"), _params((Entry.S3_DROP,), client_errors_only=True))
def test_rejection_is_recorded_under_a_plain_key(drop_batch: DropBatch, entry: Entry, case: Case) -> None:
    # Given a refused object (path traversal included), When its rejection is recorded
    (document,) = drop_batch.records.documents(drop_key(case))
    output_key = document["_key"]
    # Then the record's key stays under rejected/ with no dot or empty segments
    assert output_key.startswith("rejected/")
    assert posixpath.normpath(output_key) == output_key
    assert all(segment not in ("", ".", "..") for segment in output_key.split("/"))


def test_rejection_records_and_drop_logs_show_no_account_arn_or_traceback(drop_batch: DropBatch) -> None:
    # Given the whole batch has been processed
    shown = json.dumps(
        [drop_batch.records.documents(drop_key(case)) for case in cases_for(Entry.S3_DROP)],
        ensure_ascii=False,
    )
    # Then no record nor log line of the batch names the account, an ARN or a stack frame
    assert leaks(shown) + leaks(drop_batch.logged) == []


def test_drop_path_classifies_a_good_image_after_the_batch(drop_batch: DropBatch) -> None:
    # Given the hostile batch went first, When a good image is dropped after it, Then it is classified
    assert _sentinel_class(drop_batch.records) == GOOD_CLASS


# ---------------------------------------------------------------------------------------- fetcher


@pytest.fixture(scope="module")
def fetcher_base() -> Iterator[str]:
    with redirect_server() as base:
        yield base


def _fetch(url: str) -> Outcome:
    try:
        url_guard.fetch_url(
            url,
            allow_http=True,
            address_allowed=public_or_test_server,
            connect_timeout=1.0,
            read_timeout=READ_TIMEOUT_S,
            total_timeout=TOTAL_TIMEOUT_S,
        )
    except InputError as error:
        return Outcome(error.code, error.status)
    return Outcome(ACCEPTED, 200)


@pytest.mark.parametrize(("entry", "case"), _params((Entry.URL_FETCHER,)))
def test_fetcher_case_gets_its_declared_outcome_and_still_fetches_a_good_url(
    fetcher_base: str, tally: Tally, entry: Entry, case: Case
) -> None:
    # Given a permitted first hop that redirects (or drips)
    payload = case.payload
    assert isinstance(payload, Redirect | SlowDrip)
    url = (
        f"{fetcher_base}/drip"
        if isinstance(payload, SlowDrip)
        else redirect_url(fetcher_base, payload.location)
    )
    # When the shared fetcher follows it
    started = time.monotonic()
    outcome = _fetch(url)
    elapsed = time.monotonic() - started
    good = _fetch(f"{fetcher_base}/image.jpg")
    tally.record(entry, case, CaseRun(Observed(outcome), GOOD_CLASS if good.code == ACCEPTED else None))
    print(f"\n{case.name}: {outcome} after {elapsed:.2f} s")
    # Then the hop is refused as declared (a drip ends at the total deadline) and a good URL still works
    assert (outcome, good.code) == (case.expect[entry], ACCEPTED)
