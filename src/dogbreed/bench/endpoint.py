"""`dogbreed bench endpoint`: the model server against the course starter's handler.

Both serve the same ResNet50 (133 classes, seeded random weights: pretrained weights cannot be
downloaded here) over loopback HTTP, on the same corpus of photo-like JPEGs generated in code (sizes
up to 12 MP). For each concurrency level it prints images/s, p50/p99 latency, the throughput ratio and
the server's top-1 agreement with an FP32 PyTorch reference (full-size decode + the training
evaluation preprocessing + eager PyTorch).

Random weights give an almost uniform softmax, where top-1 flips on any noise, unlike a trained
model. The benchmark model's head is therefore a nearest-centroid classifier over the corpus'
features (one class per image, a median top-1/top-2 logit margin of 4): the backbone stays random,
the decision has a margin like a confident trained model's, and the margins are reported.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from dogbreed.bench import add_json_file_argument
from dogbreed.bench.endpoint_config import CONCURRENCY_LEVELS, QUICK_CONCURRENCY_LEVELS, BenchConfig
from dogbreed.bench.endpoint_corpus import CORPUS_SIZES, build_corpus
from dogbreed.bench.endpoint_model import (
    IMAGE_SIZE,
    NUM_CLASSES,
    build_bench_model_dir,
    compute_ceiling,
    prepare_int8,
    reference_top1,
)
from dogbreed.bench.endpoint_report import format_table, level_rows, machine_description
from dogbreed.bench.endpoint_servers import baseline_command, running, server_command
from dogbreed.bench.endpoint_traffic import LevelResult, agreement, drive


def prepare_model(
    config: BenchConfig, work_dir: Path, corpus: Sequence[bytes], log: Callable[[str], None]
) -> tuple[Path, dict[str, Any]]:
    """The benchmark model directory (reused from --work-dir when built for the same corpus)."""
    model_dir = work_dir / "model"
    marker = work_dir / "bench_model.json"
    if marker.is_file() and (model_dir / "model.onnx").is_file():
        cached = json.loads(marker.read_text())
        if cached.get("corpus_images") == config.corpus_images:
            log(f"model: reusing {model_dir}")
            return model_dir, dict(cached["head"])
    log("model: ResNet50, 133 classes, seeded backbone, nearest-centroid head; exporting ...")
    head = build_bench_model_dir(model_dir, corpus)
    marker.write_text(json.dumps({"corpus_images": config.corpus_images, "head": head}))
    return model_dir, head


def run_benchmark(config: BenchConfig, work_dir: Path, log: Callable[[str], None]) -> dict[str, Any]:
    machine = machine_description()
    log(f"machine: {machine['cpu']}, {machine['cores']} cores, load {machine['load_average_at_start']}")
    log(f"corpus: {config.corpus_images} photo-like JPEGs up to 12 MP ...")
    corpus = build_corpus(config.corpus_images)
    model_dir, head = prepare_model(config, work_dir, corpus, log)
    reference = reference_top1(model_dir, corpus)
    int8_file = prepare_int8(model_dir, log) if config.int8 else None
    ceiling = compute_ceiling(model_dir, seconds=1.5 if config.quick else 8.0, int8_file=int8_file)
    log("compute ceiling (batch 4, no decode/HTTP): " + ", ".join(f"{k} {v:.1f}" for k, v in ceiling.items()))
    warmup = 2 if config.quick else 4

    commands = {"server": server_command(model_dir, config), "baseline": baseline_command(model_dir)}
    if int8_file is not None:
        commands["int8"] = server_command(model_dir, config, onnx_file=int8_file.name)
    results: dict[str, list[LevelResult]] = {name: [] for name in commands}
    # All servers stay up (idle ones use no CPU) and each level runs them back to back, so a change in
    # the machine's background load hits every system alike rather than one whole run.
    with contextlib.ExitStack() as stack:
        urls = {name: stack.enter_context(running(command)) for name, command in commands.items()}
        for level in config.levels:
            for name, url in urls.items():
                log(f"{name:<8} c={level:<2d} ...")
                results[name].append(drive(url, corpus, level, max(config.requests_per_level, level), warmup))
    server_results, baseline_results = results["server"], results["baseline"]
    int8_results = results.get("int8", [])
    machine["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    report: dict[str, Any] = {
        "machine": machine,
        "model": {
            "architecture": "resnet50",
            "num_classes": NUM_CLASSES,
            "image_size": IMAGE_SIZE,
            "weights": "seeded random backbone (no pretrained download); nearest-centroid head",
            "server": {
                "backend": "onnxruntime fp32",
                "workers": config.server_workers,
                "max_batch_size": config.max_batch_size,
                "max_batch_delay_ms": config.max_batch_delay_ms,
            },
            "baseline": "Pillow full decode, torchvision transforms, PyTorch eager fp32, batch 1, serial",
            "corpus_images": config.corpus_images,
            "corpus_sizes": [f"{w}x{h}" for w, h in CORPUS_SIZES],
            "requests_per_level": config.requests_per_level,
            "head": head,
            "baseline_top1_agreement": [round(agreement(b, reference), 4) for b in baseline_results],
            "compute_ceiling": {k: round(v, 2) for k, v in ceiling.items()},
            "errors": {
                "server": sum(r.errors for r in server_results + int8_results),
                "baseline": sum(r.errors for r in baseline_results),
            },
        },
        "levels": level_rows(server_results, baseline_results, reference),
    }
    if int8_results:
        # Same schema as "levels": the int8 server against the same baseline run.
        report["int8_levels"] = level_rows(int8_results, baseline_results, reference)
    return report


def register(bench_subparsers: Any) -> None:
    parser = bench_subparsers.add_parser(
        "endpoint",
        help="model server vs the course starter handler (ResNet50, loopback HTTP)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--quick", action="store_true", help="small corpus and few requests (under 2 minutes)"
    )
    add_json_file_argument(parser)
    parser.add_argument("--requests", type=int, default=None, help="requests per concurrency level")
    parser.add_argument("--workers", type=int, default=1, help="model server worker processes (default 1)")
    parser.add_argument("--max-batch-size", type=int, default=4, help="server dynamic batch size (default 4)")
    parser.add_argument(
        "--max-batch-delay-ms", type=float, default=5.0, help="server batch window (default 5)"
    )
    parser.add_argument("--int8", action="store_true", help="also run the server on an int8-quantized model")
    parser.add_argument("--work-dir", type=Path, default=None, help="keep the model and corpus here")
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    config = BenchConfig(
        quick=args.quick,
        requests_per_level=args.requests or (12 if args.quick else 64),
        corpus_images=6 if args.quick else 24,
        levels=QUICK_CONCURRENCY_LEVELS if args.quick else CONCURRENCY_LEVELS,
        server_workers=args.workers,
        max_batch_size=args.max_batch_size,
        max_batch_delay_ms=args.max_batch_delay_ms,
        int8=args.int8,
    )

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    start = time.perf_counter()
    if args.work_dir is not None:
        args.work_dir.mkdir(parents=True, exist_ok=True)
        report = run_benchmark(config, args.work_dir, log)
    else:
        with tempfile.TemporaryDirectory(prefix="dogbreed-bench-") as tmp:
            report = run_benchmark(config, Path(tmp), log)
    print(format_table(report))
    print(f"(benchmark took {time.perf_counter() - start:.0f}s)")
    if args.json_file is not None:
        args.json_file.write_text(json.dumps(report, indent=2) + "\n")
    return 0
