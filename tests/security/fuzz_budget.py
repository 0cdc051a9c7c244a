"""The budget of the hypothesis fuzz targets: fixed seeds in `make test`, fresh seeds under a time budget
in `make reliability`.

- Default (`make test`): each target runs one batch of a fixed number of examples (its share of
  FIXED_EXAMPLES) from a fixed seed derived from its name, with no example database: the same inputs on
  every machine and every run, so a failure reproduces by running the test again.
- DOGBREED_FUZZ_SECONDS=N (`make reliability`: 300): the targets share N seconds; each runs batches of up
  to BATCH_EXAMPLES examples, each batch from a fresh random seed, until its share is spent (the batch in
  progress finishes; the last one is sized to the time left). A failure carries the batch seed;
  DOGBREED_FUZZ_SEED=<seed> replays exactly that batch.

    run = fuzz("parse_s3_uri", s3_uris(), check, share=0.05)   # check(value) -> an outcome label
"""

from __future__ import annotations

import os
import secrets
import time
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

T = TypeVar("T")

SECONDS_ENV = "DOGBREED_FUZZ_SECONDS"
SEED_ENV = "DOGBREED_FUZZ_SEED"
# Examples of all targets together in the fixed-seed run of `make test`.
FIXED_EXAMPLES = 1500
BATCH_EXAMPLES = 100
MIN_BATCH_EXAMPLES = 10
PROFILE = "dogbreed-fuzz"

# deadline=None: a slow example is not a failure (the budget bounds the run; pytest-timeout catches a
# hang). The health checks about slow or large data would stop a fuzzer that is meant to be slow. No
# database: a run's inputs depend on its seed only.
settings.register_profile(
    PROFILE,
    deadline=None,
    max_examples=BATCH_EXAMPLES,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)


def fresh_seconds() -> float | None:
    """The time budget of a fresh-seed run, None for the fixed-seed run."""
    raw = os.environ.get(SECONDS_ENV, "").strip()
    if not raw:
        return None
    try:
        return max(1.0, float(raw))
    except ValueError as error:
        raise ValueError(f"{SECONDS_ENV}={raw!r} is not a number of seconds") from error


def fixed_seed(name: str) -> int:
    return zlib.crc32(name.encode())


@dataclass
class FuzzRun:
    """What one target did: examples run, batches, seconds, and how the examples ended."""

    name: str
    examples: int = 0
    batches: int = 0
    seconds: float = 0.0
    seeds: list[int] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)

    def summary(self) -> str:
        common = ", ".join(f"{label}={count}" for label, count in self.outcomes.most_common())
        return (
            f"fuzz {self.name}: {self.examples} examples in {self.batches} batches, "
            f"{self.seconds:.1f} s; outcomes: {common}"
        )


def _run_batch(
    run: FuzzRun, strategy: st.SearchStrategy[T], check: Callable[[T], str], batch_seed: int, size: int
) -> None:
    @seed(batch_seed)
    @settings(settings.get_profile(PROFILE), max_examples=size)
    @given(strategy)
    def batch(value: T) -> None:
        run.outcomes[check(value)] += 1
        run.examples += 1

    run.seeds.append(batch_seed)
    try:
        batch()
    except BaseException as error:
        replay = f"replay with {SEED_ENV}={batch_seed} {SECONDS_ENV}=1" if fresh_seconds() else "fixed seed"
        error.add_note(f"fuzz target {run.name!r}: batch seed {batch_seed} ({replay})")
        raise
    run.batches += 1


def fuzz(name: str, strategy: st.SearchStrategy[T], check: Callable[[T], str], *, share: float) -> FuzzRun:
    """Run `check` on values of `strategy` for `share` (a fraction) of the budget; returns the tally.

    `check` asserts the property and returns a label for the outcome (an error code, "accepted").
    """
    run = FuzzRun(name)
    started = time.monotonic()
    seconds = fresh_seconds()
    if seconds is None:
        _run_batch(
            run, strategy, check, fixed_seed(name), max(MIN_BATCH_EXAMPLES, round(FIXED_EXAMPLES * share))
        )
    else:
        replay = os.environ.get(SEED_ENV, "").strip()
        deadline = started + seconds * share
        size = BATCH_EXAMPLES
        while True:
            _run_batch(run, strategy, check, int(replay) if replay else secrets.randbits(64), size)
            left = deadline - time.monotonic()
            if replay or left <= 0:
                break
            # The last batch is cut to what the time left allows at the rate measured so far.
            per_example = (time.monotonic() - started) / max(1, run.examples)
            size = max(MIN_BATCH_EXAMPLES, min(BATCH_EXAMPLES, int(left / per_example)))
    run.seconds = time.monotonic() - started
    print(run.summary())
    return run
