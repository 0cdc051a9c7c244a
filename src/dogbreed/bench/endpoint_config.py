"""`dogbreed bench endpoint`'s settings: the concurrency levels and one run's configuration."""

from __future__ import annotations

from dataclasses import dataclass

CONCURRENCY_LEVELS: tuple[int, ...] = (1, 4, 16)
QUICK_CONCURRENCY_LEVELS: tuple[int, ...] = (1, 4, 16)


@dataclass(frozen=True)
class BenchConfig:
    quick: bool
    requests_per_level: int
    corpus_images: int
    levels: tuple[int, ...]
    server_workers: int
    max_batch_size: int
    max_batch_delay_ms: float
    int8: bool
