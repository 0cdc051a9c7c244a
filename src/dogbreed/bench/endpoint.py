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
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dogbreed.loopback import free_port

CONCURRENCY_LEVELS: tuple[int, ...] = (1, 4, 16)
QUICK_CONCURRENCY_LEVELS: tuple[int, ...] = (1, 4, 16)
NUM_CLASSES = 133
IMAGE_SIZE = 224
SEED = 0
CALIBRATION_IMAGES = 12
# Photo sizes from a small web image to a 12 MP phone photo.
CORPUS_SIZES: tuple[tuple[int, int], ...] = (
    (800, 600),
    (1280, 960),
    (1600, 1200),
    (2048, 1536),
    (3000, 2000),
    (4000, 3000),
)
MAX_JPEG_BYTES = 6 * 1024 * 1024
HEAD_MARGIN = 4.0  # median top-1/top-2 logit margin of the benchmark head (e^4 = 55x)
COMPUTE_CEILING_NOTE = 23.0  # ResNet50 fp32 images/s this class of CPU reaches (quoted target)


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


@dataclass
class LevelResult:
    concurrency: int
    images_per_s: float
    p50_ms: float
    p99_ms: float
    top1: list[int]  # per request, the corpus index order is in `indices`
    indices: list[int]
    errors: int


# ---------------------------------------------------------------------------------------- corpus


def photo_like_jpeg(width: int, height: int, rng: np.random.Generator) -> bytes:
    """A JPEG with photo statistics: smooth low-frequency colour fields, a few soft blobs (subjects),
    edges and mild sensor noise; well under the 6 MB request limit."""
    from PIL import Image, ImageDraw, ImageFilter

    base = rng.integers(0, 256, size=(6, 8, 3), dtype=np.uint8)
    image = Image.fromarray(base).resize((width, height), Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(3, 7))):
        cx, cy = rng.uniform(0.1, 0.9) * width, rng.uniform(0.1, 0.9) * height
        rx, ry = rng.uniform(0.05, 0.3) * width, rng.uniform(0.05, 0.3) * height
        colour = tuple(int(c) for c in rng.integers(0, 256, size=3))
        draw.ellipse((cx - rx, cy - ry, cx + rx, cy + ry), fill=colour)
    image = image.filter(ImageFilter.GaussianBlur(radius=max(width, height) / 400))
    noise = rng.normal(0, 6, size=(height, width, 3)).astype(np.int16)
    pixels = np.clip(np.asarray(image, dtype=np.int16) + noise, 0, 255).astype(np.uint8)
    photo = Image.fromarray(pixels)
    for quality in (90, 85, 75, 60):
        buffer = io.BytesIO()
        photo.save(buffer, "JPEG", quality=quality)
        if buffer.tell() <= MAX_JPEG_BYTES:
            return buffer.getvalue()
    raise RuntimeError(f"cannot encode a {width}x{height} corpus image under {MAX_JPEG_BYTES} bytes")


def build_corpus(count: int, seed: int = SEED) -> list[bytes]:
    rng = np.random.default_rng(seed)
    return [photo_like_jpeg(*CORPUS_SIZES[i % len(CORPUS_SIZES)], rng) for i in range(count)]


# ----------------------------------------------------------------------------------------- model


def reference_inputs(corpus: Sequence[bytes]) -> np.ndarray[Any, np.dtype[np.float32]]:
    """The FP32 reference preprocessing: full-size decode + the training evaluation transform."""
    from dogbreed_job import transforms
    from PIL import Image

    return np.stack(
        [transforms.preprocess(Image.open(io.BytesIO(data)).convert("RGB"), IMAGE_SIZE) for data in corpus]
    )


def build_bench_model_dir(model_dir: Path, corpus: Sequence[bytes]) -> dict[str, Any]:
    """Seeded ResNet50 with a nearest-centroid head over the corpus, exported with `export_model_dir`
    (weights, verified ONNX, code/). Returns facts about the head's margins for the report.

    Each corpus image gets its own class: that class's weight row is the image's centred, normalized
    feature vector, so its top-1 is decided with a real margin, like a trained model's confident
    prediction; the other classes get small random rows. Logits are scaled to a median top-1/top-2
    margin of HEAD_MARGIN."""
    import torch
    from dataset_check.breeds import DOGIMAGES_CLASSES, breed_name
    from dogbreed_job import artifacts
    from dogbreed_job.export import export_model_dir
    from dogbreed_job.model import build_model

    torch.manual_seed(SEED)
    model = build_model("resnet50", NUM_CLASSES, pretrained=False).eval()
    inputs = torch.from_numpy(reference_inputs(corpus))
    backbone = torch.nn.Sequential(*list(model.children())[:-1])
    with torch.inference_mode():
        features = backbone(inputs).flatten(1).double()
    mean = features.mean(0)
    centred = features - mean
    generator = torch.Generator().manual_seed(SEED)
    dims = features.shape[1]
    weight = torch.randn(NUM_CLASSES, dims, generator=generator, dtype=torch.float64) / dims**0.5
    assigned = torch.randperm(NUM_CLASSES, generator=generator)[: len(corpus)]
    weight[assigned] = centred / centred.norm(dim=1, keepdim=True)
    logits = centred @ weight.T
    top2 = logits.topk(2, dim=1).values
    scale = HEAD_MARGIN / float((top2[:, 0] - top2[:, 1]).median())
    head_layer = model.fc
    assert isinstance(head_layer, torch.nn.Linear)
    with torch.no_grad():
        head_layer.weight.copy_((weight * scale).float())
        head_layer.bias.copy_((-(mean @ weight.T) * scale).float())
        probabilities = torch.softmax(model(inputs).double(), dim=1)
    top = probabilities.topk(2, dim=1).values
    classes = [breed_name(name) for name in DOGIMAGES_CLASSES]
    config = artifacts.ModelConfig(
        backbone="resnet50",
        num_classes=NUM_CLASSES,
        image_size=IMAGE_SIZE,
        model_version="bench-resnet50-seed0",
    )
    export_model_dir(model, model_dir=model_dir, classes=classes, config=config)
    return {
        "head": "nearest-centroid over the corpus features (one class per corpus image)",
        "distinct_top1_classes": int(probabilities.argmax(1).unique().numel()),
        "median_top1_probability": round(float(top[:, 0].median()), 4),
        "min_top1_probability": round(float(top[:, 0].min()), 4),
        "median_top1_top2_logit_margin": HEAD_MARGIN,
    }


def reference_top1(model_dir: Path, corpus: Sequence[bytes]) -> list[int]:
    import torch
    from dogbreed_job import artifacts
    from dogbreed_job.model import build_model, load_weights

    model = build_model("resnet50", NUM_CLASSES, pretrained=False)
    load_weights(model, torch.load(model_dir / artifacts.WEIGHTS_FILE, map_location="cpu", weights_only=True))
    with torch.inference_mode():
        logits = model.eval()(torch.from_numpy(reference_inputs(corpus)))
    return [int(i) for i in logits.argmax(1)]


def compute_ceiling(model_dir: Path, seconds: float, int8_file: Path | None = None) -> dict[str, float]:
    """Model-only throughput on this CPU (no decode, no HTTP): ONNX Runtime fp32 (and int8) at batch 4
    and PyTorch eager fp32 at batch 1, with all cores."""
    import onnxruntime as ort
    import torch
    from dogbreed_job import artifacts
    from dogbreed_job.model import build_model, load_weights

    batch = np.random.default_rng(SEED).standard_normal((4, 3, IMAGE_SIZE, IMAGE_SIZE)).astype(np.float32)

    def session(path: Path) -> Any:
        options = ort.SessionOptions()
        options.intra_op_num_threads = os.cpu_count() or 1
        return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])

    def rate(run: Callable[[], object], images: int = len(batch)) -> float:
        run()
        done, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            run()
            done += images
        return done / (time.perf_counter() - start)

    model = build_model("resnet50", NUM_CLASSES, pretrained=False)
    load_weights(
        model, torch.load(model_dir / artifacts.WEIGHTS_FILE, map_location="cpu", weights_only=True)
    ).eval()
    rates: dict[str, float] = {}
    with torch.inference_mode():
        # Batch 1, as the baseline runs it (PyTorch eager was slower per image at batch 4 here).
        rates["pytorch_fp32_images_per_s"] = rate(lambda: model(torch.from_numpy(batch[:1])), images=1)
    fp32 = session(model_dir / artifacts.ONNX_FILE)
    rates["onnx_fp32_images_per_s"] = rate(lambda: fp32.run(None, {"input": batch}))
    if int8_file is not None:
        int8 = session(int8_file)
        rates["onnx_int8_images_per_s"] = rate(lambda: int8.run(None, {"input": batch}))
    return rates


# ---------------------------------------------------------------------------------------- servers


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout_s: float = 180.0) -> None:
    import requests

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before it was ready")
        try:
            if requests.get(f"{url}/ping", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url}/ping did not answer 200 within {timeout_s:.0f}s")


@contextmanager
def running(command: list[str], env: dict[str, str] | None = None) -> Iterator[str]:
    """Start a server command on a free loopback port (`{port}` in the command), yield its URL."""
    port = free_port()
    process = subprocess.Popen(
        [part.format(port=port) for part in command],
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, process)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def server_command(model_dir: Path, config: BenchConfig, onnx_file: str | None = None) -> list[str]:
    extra = ["--onnx-file", onnx_file] if onnx_file else []
    return [
        sys.executable,
        "-m",
        "dogbreed",
        "serve",
        "--model-dir",
        str(model_dir),
        "--port",
        "{port}",
        "--workers",
        str(config.server_workers),
        "--max-batch-size",
        str(config.max_batch_size),
        "--max-batch-delay-ms",
        str(config.max_batch_delay_ms),
        "--log-level",
        "warning",
        *extra,
    ]


def baseline_command(model_dir: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "dogbreed.bench.starter_baseline",
        "--model-dir",
        str(model_dir),
        "--port",
        "{port}",
    ]


# ------------------------------------------------------------------------------------------- load


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


# ---------------------------------------------------------------------------------------- report


def machine_description() -> dict[str, Any]:
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_gib = None
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        memory_gib = round(pages / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": memory_gib,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


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


def prepare_int8(model_dir: Path, log: Callable[[str], None]) -> Path:
    from dogbreed.serving.quantize import INT8_ONNX_FILE, quantize_model_dir

    target = model_dir / INT8_ONNX_FILE
    if not target.is_file():
        log("int8: calibrating on a separate corpus (seed 1) and quantizing ...")
        calibration = build_corpus(CALIBRATION_IMAGES, seed=SEED + 1)
        quantize_model_dir(model_dir, calibration)
    return target


def level_rows(
    servers: Sequence[LevelResult], baselines: Sequence[LevelResult], reference: Sequence[int]
) -> list[dict[str, Any]]:
    return [
        {
            "concurrency": server.concurrency,
            "server_images_per_s": round(server.images_per_s, 2),
            "baseline_images_per_s": round(baseline.images_per_s, 2),
            "ratio": round(server.images_per_s / baseline.images_per_s, 2),
            "server_p50_ms": round(server.p50_ms, 1),
            "server_p99_ms": round(server.p99_ms, 1),
            "baseline_p50_ms": round(baseline.p50_ms, 1),
            "baseline_p99_ms": round(baseline.p99_ms, 1),
            "top1_agreement": round(agreement(server, reference), 4),
        }
        for server, baseline in zip(servers, baselines, strict=True)
    ]


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


def format_table(report: dict[str, Any]) -> str:
    header = (
        f"{'server':<6} {'c':>3} {'img/s':>7} {'base img/s':>10} {'ratio':>6} {'srv p50':>8} {'srv p99':>8} "
        f"{'base p50':>8} {'base p99':>8} {'top1 agr':>8}"
    )
    rows = [header]
    tables = [("fp32", report["levels"])]
    if "int8_levels" in report:
        tables.append(("int8", report["int8_levels"]))
    for name, levels in tables:
        for level in levels:
            rows.append(
                f"{name:<6} {level['concurrency']:>3} {level['server_images_per_s']:>7.2f} "
                f"{level['baseline_images_per_s']:>10.2f} {level['ratio']:>5.2f}x "
                f"{level['server_p50_ms']:>7.0f}ms {level['server_p99_ms']:>7.0f}ms "
                f"{level['baseline_p50_ms']:>7.0f}ms {level['baseline_p99_ms']:>7.0f}ms "
                f"{level['top1_agreement']:>8.2%}"
            )
    ceiling = report["model"]["compute_ceiling"]
    for name, levels in tables:
        best = max(level["server_images_per_s"] for level in levels)
        own = ceiling.get(f"onnx_{name}_images_per_s", ceiling["onnx_fp32_images_per_s"])
        c1 = levels[0]
        rows.append(
            f"{name}: best {best:.1f} img/s end to end = {best / own:.0%} of its model-only ceiling "
            f"({own:.1f} img/s), {best / COMPUTE_CEILING_NOTE:.0%} of the quoted "
            f"~{COMPUTE_CEILING_NOTE:.0f} img/s fp32 ceiling; "
            f"c=1 p50 server/baseline {c1['server_p50_ms'] / c1['baseline_p50_ms']:.2f}"
        )
    return "\n".join(rows)


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
    parser.add_argument("--json", type=Path, default=None, help="also write the figures as JSON to this file")
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
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0
