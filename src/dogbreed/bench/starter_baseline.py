"""The baseline for `dogbreed bench endpoint`: the course starter's serving handler, reproduced.

What the starter did per request: decode the full-size image with Pillow, torchvision
Resize(256) / CenterCrop(224) / ToTensor / Normalize, one PyTorch eager FP32 forward pass at batch
size 1, one request at a time per worker. It is served over the same HTTP stack as the real server
(uvicorn + starlette) so the comparison measures the handler, not the web framework.

    python -m dogbreed.bench.starter_baseline --model-dir DIR --port 8090
"""

from __future__ import annotations

import argparse
import io
import threading
from collections.abc import Callable
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


def load_starter_model(model_dir: Path) -> tuple[Callable[[bytes], list[float]], list[str], str]:
    """(classify(image_bytes) -> probabilities, classes, model_version) the way the starter did it."""
    import torch
    from dogbreed_job import artifacts, transforms
    from dogbreed_job.model import build_model, load_weights
    from PIL import Image
    from torchvision import transforms as T

    config = artifacts.ModelConfig.load(model_dir)
    classes = artifacts.load_classes(model_dir)
    network = build_model(config.backbone, config.num_classes, pretrained=False)
    load_weights(
        network, torch.load(model_dir / artifacts.WEIGHTS_FILE, map_location="cpu", weights_only=True)
    )
    network.eval()
    transform = T.Compose(
        [
            T.Resize(transforms.resize_size(config.image_size)),
            T.CenterCrop(config.image_size),
            T.ToTensor(),
            T.Normalize(transforms.IMAGENET_MEAN, transforms.IMAGENET_STD),
        ]
    )

    def classify(data: bytes) -> list[float]:
        image = Image.open(io.BytesIO(data)).convert("RGB")  # full-size decode
        batch = transform(image).unsqueeze(0)
        with torch.no_grad():
            logits = network(batch)
        return [float(p) for p in torch.softmax(logits, dim=1)[0]]

    return classify, classes, config.model_version


def create_app(model_dir: Path) -> Starlette:
    classify, classes, version = load_starter_model(model_dir)
    one_at_a_time = threading.Lock()

    async def ping(_request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def invoke(request: Request) -> Response:
        import anyio

        body = await request.body()

        def work() -> list[float]:
            with one_at_a_time:
                return classify(body)

        probabilities = await anyio.to_thread.run_sync(work)
        best = max(range(len(probabilities)), key=probabilities.__getitem__)
        prediction = {"breed": classes[best], "class_index": best, "probability": probabilities[best]}
        return JSONResponse({"model_version": version, "predictions": [prediction]})

    return Starlette(
        routes=[Route("/ping", ping, methods=["GET"]), Route("/invocations", invoke, methods=["POST"])]
    )


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(
        create_app(args.model_dir), host=args.host, port=args.port, log_level="warning", access_log=False
    )


if __name__ == "__main__":
    main()
