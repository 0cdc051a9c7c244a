"""The model server's dynamic batcher: requests inside the window share one batch, bounded in size."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from dogbreed.serving.batcher import DynamicBatcher


class RecordingModel:
    def __init__(self, fail_on: str | None = None) -> None:
        self.batches: list[list[str]] = []
        self.fail_on = fail_on

    def __call__(self, requests: Sequence[str]) -> list[str]:
        self.batches.append(list(requests))
        if self.fail_on in requests:
            raise RuntimeError("model failure")
        return [f"result-{r}" for r in requests]


def run(coroutine):
    return asyncio.run(coroutine)


def test_requests_within_the_window_run_as_one_batch() -> None:
    model = RecordingModel()

    async def scenario() -> list[str]:
        batcher = DynamicBatcher(model, max_batch_size=8, max_delay_s=0.2)
        batcher.start()
        results = await asyncio.gather(*(batcher.submit(str(i)) for i in range(5)))
        await batcher.stop()
        return list(results)

    assert run(scenario()) == [f"result-{i}" for i in range(5)]
    assert model.batches == [["0", "1", "2", "3", "4"]]


def test_batches_never_exceed_the_maximum_size() -> None:
    model = RecordingModel()

    async def scenario() -> list[str]:
        batcher = DynamicBatcher(model, max_batch_size=3, max_delay_s=0.2)
        batcher.start()
        results = await asyncio.gather(*(batcher.submit(str(i)) for i in range(7)))
        await batcher.stop()
        return list(results)

    assert run(scenario()) == [f"result-{i}" for i in range(7)]
    assert [len(batch) for batch in model.batches] == [3, 3, 1]
    assert [item for batch in model.batches for item in batch] == [str(i) for i in range(7)]


def test_multi_image_requests_count_by_images() -> None:
    model = RecordingModel()
    sizes = {"a": 3, "b": 3, "c": 1}

    async def scenario() -> None:
        batcher = DynamicBatcher(model, max_batch_size=4, max_delay_s=0.2, images_in=sizes.__getitem__)
        batcher.start()
        await asyncio.gather(*(batcher.submit(name) for name in "abc"))
        await batcher.stop()

    run(scenario())
    assert model.batches == [["a"], ["b", "c"]]


def test_zero_delay_runs_a_lone_request_immediately() -> None:
    model = RecordingModel()

    async def scenario() -> str:
        batcher = DynamicBatcher(model, max_batch_size=8, max_delay_s=0.0)
        batcher.start()
        result = await batcher.submit("solo")
        await batcher.stop()
        return str(result)

    assert run(scenario()) == "result-solo"


def test_a_failing_batch_fails_its_requests_and_the_batcher_keeps_serving() -> None:
    model = RecordingModel(fail_on="bad")

    async def scenario() -> tuple[list[object], str]:
        batcher = DynamicBatcher(model, max_batch_size=8, max_delay_s=0.05)
        batcher.start()
        first = await asyncio.gather(batcher.submit("bad"), batcher.submit("ok"), return_exceptions=True)
        later = await batcher.submit("later")
        await batcher.stop()
        return list(first), str(later)

    first, later = run(scenario())
    assert all(isinstance(result, RuntimeError) for result in first)
    assert later == "result-later"


def test_stop_finishes_queued_work() -> None:
    model = RecordingModel()

    async def scenario() -> list[str]:
        batcher = DynamicBatcher(model, max_batch_size=2, max_delay_s=0.05)
        batcher.start()
        pending = [asyncio.create_task(batcher.submit(str(i))) for i in range(4)]
        await asyncio.sleep(0)  # queued, not yet run
        await batcher.stop()
        return [task.result() for task in pending]

    assert run(scenario()) == [f"result-{i}" for i in range(4)]


@pytest.mark.parametrize(("size", "delay"), [(0, 0.01), (4, -1.0)])
def test_invalid_settings_are_refused(size: int, delay: float) -> None:
    with pytest.raises(ValueError):
        DynamicBatcher(RecordingModel(), max_batch_size=size, max_delay_s=delay)


def test_prepare_runs_before_the_forward_pass_and_failures_stay_per_request() -> None:
    events: list[str] = []

    def prepare(request: str) -> str:
        events.append(f"prepare-{request}")
        if request == "corrupt":
            raise ValueError("corrupt image")
        return request.upper()

    def run_batch(requests: Sequence[str]) -> list[str]:
        events.append(f"run-{'+'.join(requests)}")
        return [f"result-{r}" for r in requests]

    async def scenario() -> list[object]:
        batcher = DynamicBatcher(
            run_batch, max_batch_size=8, max_delay_s=0.2, prepare=prepare, prepare_threads=2
        )
        batcher.start()
        results = await asyncio.gather(
            *(batcher.submit(r) for r in ("a", "corrupt", "b")), return_exceptions=True
        )
        await batcher.stop()
        return list(results)

    results = run(scenario())
    assert results[0] == "result-A" and results[2] == "result-B"
    assert isinstance(results[1], ValueError)
    # Every request was prepared before the single forward pass, which saw only the good ones.
    assert sorted(events[:3]) == ["prepare-a", "prepare-b", "prepare-corrupt"]
    assert events[3:] == ["run-A+B"]
