"""A time budget for hypothesis fuzz targets.

Hypothesis stops after `max_examples`, not after a time. A target here runs batches of up to
`BATCH_EXAMPLES` examples, each batch from a fresh random seed, until its share of
DOGBREED_FUZZ_SECONDS is spent (the batch in progress finishes; the last one is sized to the time
left). A failing batch is shrunk by hypothesis as usual, and the error carries the batch seed;
DOGBREED_FUZZ_SEED=<seed> replays exactly that one batch.

    run = fuzz("parse_s3_uri", s3_uris(), check, share=5.0)   # check(value) -> an outcome label
"""

from __future__ import annotations

import os
import secrets
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

T = TypeVar("T")

SECONDS_ENV = "DOGBREED_FUZZ_SECONDS"
SEED_ENV = "DOGBREED_FUZZ_SEED"
# `make test` spends about a minute on all targets together; `make reliability` raises it.
DEFAULT_SECONDS = 60.0
BATCH_EXAMPLES = 100
MIN_BATCH_EXAMPLES = 10
PROFILE = "dogbreed-fuzz"

# deadline=None: a slow example is not a failure (the budget bounds the run; pytest-timeout catches a
# hang). The health checks about slow or large data would stop a fuzzer that is meant to be slow.
settings.register_profile(
    PROFILE,
    deadline=None,
    max_examples=BATCH_EXAMPLES,
    derandomize=False,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)


def total_seconds() -> float:
    raw = os.environ.get(SECONDS_ENV, "").strip()
    try:
        return max(1.0, float(raw)) if raw else DEFAULT_SECONDS
    except ValueError:
        return DEFAULT_SECONDS


@dataclass
class FuzzRun:
    """What one target did: examples run, batches, seconds, and how the examples ended."""

    name: str
    examples: int = 0
    batches: int = 0
    seconds: float = 0.0
    outcomes: Counter[str] = field(default_factory=Counter)

    def summary(self) -> str:
        common = ", ".join(f"{label}={count}" for label, count in self.outcomes.most_common())
        return (
            f"fuzz {self.name}: {self.examples} examples in {self.batches} batches, "
            f"{self.seconds:.1f} s; outcomes: {common}"
        )


def fuzz(name: str, strategy: st.SearchStrategy[T], check: Callable[[T], str], *, share: float) -> FuzzRun:
    """Run `check` on values of `strategy` for `share` of the budget (seconds); returns the tally.

    `check` asserts the property and returns a label for the outcome (an error code, "accepted").
    """
    run = FuzzRun(name)
    replay = os.environ.get(SEED_ENV, "").strip()
    started = time.monotonic()
    deadline = started + share
    size = BATCH_EXAMPLES
    while True:
        batch_seed = int(replay) if replay else secrets.randbits(64)

        @seed(batch_seed)
        @settings(settings.get_profile(PROFILE), max_examples=size)
        @given(strategy)
        def batch(value: T) -> None:
            run.outcomes[check(value)] += 1
            run.examples += 1

        try:
            batch()
        except BaseException as error:
            error.add_note(
                f"fuzz target {name!r}: batch seed {batch_seed}; replay with {SEED_ENV}={batch_seed}"
            )
            raise
        run.batches += 1
        left = deadline - time.monotonic()
        if replay or left <= 0:
            break
        # The last batch is cut to what the time left allows at the rate measured so far.
        per_example = (time.monotonic() - started) / max(1, run.examples)
        size = max(MIN_BATCH_EXAMPLES, min(BATCH_EXAMPLES, int(left / per_example)))
    run.seconds = time.monotonic() - started
    print(run.summary())
    return run
