"""The endpoint benchmark's load: client threads at one concurrency level, their throughput, latency
and top-1 answers, and the answers' agreement with the reference."""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass
class LevelResult:
    concurrency: int
    images_per_s: float
    p50_ms: float
    p99_ms: float
    top1: list[int]  # per request, the corpus index order is in `indices`
    indices: list[int]
    errors: int


def drive(url: str, corpus: Sequence[bytes], concurrency: int, total: int, warmup: int) -> LevelResult:
    """`concurrency` client threads send `total` requests (round-robin over the corpus)."""
    import requests

    latencies: list[float] = [0.0] * total
    top1: list[int] = [-1] * total
    errors = [0]
    counter = [0]
    lock = threading.Lock()

    def send(session: requests.Session, data: bytes) -> int:
        response = session.post(
            f"{url}/invocations",
            data=data,
            headers={"Content-Type": "image/jpeg", "Accept": "application/json"},
            timeout=300,
        )
        response.raise_for_status()
        return int(response.json()["predictions"][0]["class_index"])

    def worker() -> None:
        with requests.Session() as session:
            while True:
                with lock:
                    index = counter[0]
                    counter[0] += 1
                if index >= total:
                    return
                data = corpus[index % len(corpus)]
                start = time.perf_counter()
                try:
                    top1[index] = send(session, data)
                except requests.RequestException:
                    with lock:
                        errors[0] += 1
                latencies[index] = time.perf_counter() - start

    with requests.Session() as session:
        for i in range(warmup):
            send(session, corpus[i % len(corpus)])
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    ordered = sorted(latencies)
    return LevelResult(
        concurrency=concurrency,
        images_per_s=(total - errors[0]) / elapsed,
        p50_ms=1000 * statistics.median(ordered),
        p99_ms=1000 * ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))],
        top1=top1,
        indices=[i % len(corpus) for i in range(total)],
        errors=errors[0],
    )


def agreement(result: LevelResult, reference: Sequence[int]) -> float:
    pairs = [(got, reference[i]) for got, i in zip(result.top1, result.indices, strict=True)]
    return sum(got == want for got, want in pairs) / len(pairs)
