"""The load benchmark's accounting: what one request answered, what the stores hold for a run, and
the reconciliation of the two (lost and duplicated records, undocumented answers)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

# The documented "busy" answer: 503 with Retry-After (docs/api.md).
UNAVAILABLE = 503


@dataclass(frozen=True)
class RequestOutcome:
    kind: str  # "binary" | "base64"
    status: int  # 0: no HTTP answer (connection error, timeout)
    latency_s: float
    retry_after: str | None = None
    prediction_id: str | None = None
    error: str | None = None  # the error code (or transport error) of a non-2xx answer

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def documented(self) -> bool:
        """2xx, or 503 with Retry-After: the only answers the API may give under load."""
        return self.ok or (self.status == UNAVAILABLE and bool(self.retry_after))


@dataclass
class StoreSnapshot:
    """What the stores hold for one run."""

    api_result_ids: set[str] = field(default_factory=set)  # ids with results/api/<id>.json
    api_item_ids: set[str] = field(default_factory=set)  # ids with a Predictions item
    drop_result_keys: Counter[str] = field(default_factory=Counter)  # incoming key -> results objects
    drop_items: Counter[str] = field(default_factory=Counter)  # incoming key -> Predictions items
    rejected_keys: set[str] = field(default_factory=set)  # incoming keys with a rejected/ record
    dead_lettered: Counter[str] = field(default_factory=Counter)  # incoming key -> DLQ messages

    def accounted(self, dropped: Iterable[str]) -> int:
        """Dropped keys whose processing has ended: stored (object and item), rejected or parked."""
        return sum(
            1
            for key in dropped
            if (self.drop_result_keys[key] and self.drop_items[key])
            or key in self.rejected_keys
            or self.dead_lettered[key]
        )


@dataclass(frozen=True)
class PathRow:
    path: str
    sent: int
    ok: int
    unavailable: int | None  # 503 with Retry-After; None where the path has no synchronous answer
    s3_results: int
    dynamodb_items: int
    lost: int
    duplicated: int


@dataclass
class Failure:
    """Requests that got an undocumented answer, grouped by status and error."""

    status: int
    error: str
    count: int
    kinds: list[str]


def status_histogram(outcomes: Iterable[RequestOutcome]) -> dict[int, int]:
    return dict(sorted(Counter(outcome.status for outcome in outcomes).items()))


def failures(outcomes: Iterable[RequestOutcome]) -> list[Failure]:
    groups: dict[tuple[int, str], Failure] = {}
    for outcome in outcomes:
        if outcome.documented:
            continue
        error = outcome.error or ("503 without Retry-After" if outcome.status == UNAVAILABLE else "")
        failure = groups.setdefault((outcome.status, error), Failure(outcome.status, error, 0, []))
        failure.count += 1
        if outcome.kind not in failure.kinds:
            failure.kinds.append(outcome.kind)
    return sorted(groups.values(), key=lambda failure: -failure.count)


def reconcile(outcomes: list[RequestOutcome], dropped: list[str], stores: StoreSnapshot) -> list[PathRow]:
    """One row per path. Lost: a 2xx or a dropped image without its S3 result and its item.
    Duplicated: more records than answers (an id answered twice, a key stored twice)."""
    ok_ids = Counter(outcome.prediction_id for outcome in outcomes if outcome.ok)
    ids = set(ok_ids)
    api_lost = sum(
        1
        for prediction_id in ids
        if prediction_id is None
        or prediction_id not in stores.api_result_ids
        or prediction_id not in stores.api_item_ids
    )
    api = PathRow(
        path="API",
        sent=len(outcomes),
        ok=sum(ok_ids.values()),
        unavailable=sum(1 for outcome in outcomes if outcome.status == UNAVAILABLE and outcome.documented),
        s3_results=len(ids & stores.api_result_ids),
        dynamodb_items=len(ids & stores.api_item_ids),
        lost=api_lost,
        duplicated=sum(count - 1 for count in ok_ids.values()),
    )
    drop_set = set(dropped)
    stored = [key for key in drop_set if stores.drop_result_keys[key] and stores.drop_items[key]]
    strays = sum(
        count for key, count in (stores.drop_result_keys + stores.drop_items).items() if key not in drop_set
    )
    drops = PathRow(
        path="S3 drop",
        sent=len(dropped),
        ok=len(stored),
        unavailable=None,
        s3_results=sum(stores.drop_result_keys.values()),
        dynamodb_items=sum(stores.drop_items.values()),
        lost=len(drop_set) - len(stored),
        duplicated=strays
        + sum(
            max(0, stores.drop_result_keys[key] - 1) + max(0, stores.drop_items[key] - 1) for key in drop_set
        ),
    )
    return [api, drops]


def _extra(count: int) -> int:
    """Records beyond the one expected."""
    return max(0, count - 1)
