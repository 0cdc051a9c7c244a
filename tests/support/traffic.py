"""Prediction traffic that keeps arriving while something changes on the shared local cloud (an
endpoint update, a pipeline run): API requests in threads, each answer kept with its time, so a test
can say which model answered when and count the 201s back from the stores."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import httpx

from tests.support.local_cloud import CloudWorld
from tests.support.predictions import post_image


@dataclass
class Traffic:
    """API requests in two threads until stopped: (time, response) of each."""

    world: CloudWorld
    answers: list[tuple[float, httpx.Response]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _run(self, index: int) -> None:
        while not self._stop.is_set():
            response = post_image(self.world, index % 3)
            with self._lock:
                self.answers.append((time.monotonic(), response))

    def __enter__(self) -> Traffic:
        self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(2)]
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=90)

    def versions(self, start: float, end: float) -> set[str]:
        with self._lock:
            answers = list(self.answers)
        return {r.json()["model_version"] for t, r in answers if start <= t <= end and r.status_code == 201}

    def created_ids(self) -> list[str]:
        return [r.json()["prediction_id"] for _, r in self.answers if r.status_code == 201]
