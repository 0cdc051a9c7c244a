"""Dynamic batching: requests that arrive within a short window run through the network as one batch.

One batcher per worker process. The batcher takes the first waiting request, keeps collecting until
`max_batch_size` images or `max_delay_s` have passed, then runs the batch in two phases on its
model thread: `prepare` (image decoding, spread over `prepare_threads`) for every request, then
one forward pass for all requests that prepared (the runtime's intra-op threads parallelize it).
The phases never overlap, so decoding threads do not preempt the runtime's synchronized threads
on a small machine; a request whose preparation fails gets its own error, the others go on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)


@dataclass
class _Pending:
    request: Any
    images: int
    future: asyncio.Future[Any] = field(repr=False)


class DynamicBatcher:
    def __init__(
        self,
        run_batch: Callable[[Sequence[Any]], list[Any]],
        *,
        max_batch_size: int = 8,
        max_delay_s: float = 0.005,
        images_in: Callable[[Any], int] = lambda _request: 1,
        prepare: Callable[[Any], Any] | None = None,
        prepare_threads: int = 1,
    ) -> None:
        if max_batch_size < 1:
            raise ValueError("max_batch_size must be at least 1")
        if max_delay_s < 0:
            raise ValueError("max_delay_s must not be negative")
        self._run_batch = run_batch
        self._prepare = prepare
        self._prepare_pool = (
            ThreadPoolExecutor(max_workers=max(1, prepare_threads), thread_name_prefix="prepare")
            if prepare is not None
            else None
        )
        self._images_in = images_in
        self.max_batch_size = max_batch_size
        self.max_delay_s = max_delay_s
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._model_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model")
        self._task: asyncio.Task[None] | None = None
        self.batches_run = 0
        self.images_run = 0

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop(), name="dynamic-batcher")

    async def submit(self, request: Any) -> Any:
        """Queue one (preprocessed) request and wait for its result."""
        if self._task is None or self._task.done():
            raise RuntimeError("the batcher is not running")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Pending(request, max(1, self._images_in(request)), future))
        return await future

    async def stop(self) -> None:
        """Finish what is queued, then stop (graceful shutdown)."""
        if self._task is not None:
            await self._queue.join()
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._model_thread.shutdown(wait=True)
        if self._prepare_pool is not None:
            self._prepare_pool.shutdown(wait=True)

    def _prepare_and_run(self, requests: Sequence[Any]) -> list[tuple[bool, Any]]:
        """(True, result) or (False, exception) per request; runs on the model thread."""
        outcomes: list[tuple[bool, Any]]
        if self._prepare is None or self._prepare_pool is None:
            outcomes = [(True, request) for request in requests]
        else:
            futures = [self._prepare_pool.submit(self._prepare, request) for request in requests]
            outcomes = []
            for future in futures:
                try:
                    outcomes.append((True, future.result()))
                except Exception as error:  # this request's own failure (e.g. a corrupt image)
                    outcomes.append((False, error))
        ready = [value for ok, value in outcomes if ok]
        results = iter(self._run_batch(ready) if ready else [])
        return [(True, next(results)) if ok else (False, value) for ok, value in outcomes]

    async def _collect(self) -> list[_Pending]:
        first = await self._queue.get()
        batch = [first]
        images = first.images
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.max_delay_s
        while images < self.max_batch_size:
            if self._queue.empty():
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    item = await asyncio.wait_for(self._queue.get(), remaining)
                except TimeoutError:
                    break
            else:
                item = self._queue.get_nowait()
            if images + item.images > self.max_batch_size:
                # Keep the batch bounded; the item leads the next batch.
                await self._run(batch)
                batch, images = [item], item.images
                deadline = loop.time() + self.max_delay_s
                continue
            batch.append(item)
            images += item.images
        return batch

    async def _run(self, batch: list[_Pending]) -> None:
        loop = asyncio.get_running_loop()
        try:
            outcomes = await loop.run_in_executor(
                self._model_thread, self._prepare_and_run, [p.request for p in batch]
            )
        except Exception as error:  # every waiter gets the failure; the loop keeps serving
            logger.exception("batch of %d request(s) failed", len(batch))
            for pending in batch:
                if not pending.future.done():
                    pending.future.set_exception(error)
        else:
            self.batches_run += 1
            self.images_run += sum(p.images for p in batch)
            for pending, (ok, value) in zip(batch, outcomes, strict=True):
                if pending.future.done():
                    continue
                if ok:
                    pending.future.set_result(value)
                else:
                    pending.future.set_exception(value)
        finally:
            for _ in batch:
                self._queue.task_done()

    async def _loop(self) -> None:
        while True:
            batch = await self._collect()
            await self._run(batch)
