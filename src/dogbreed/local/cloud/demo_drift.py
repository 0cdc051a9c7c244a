"""The demo's "watch the model" step: new images from the training distribution through the
endpoint (captured), the drift monitor over the window (no drift); then the same images with their
colours inverted at three times the size (another camera, a kind of image the model never saw), the
monitor again (drift) and the stack's drift alarms going to ALARM on the local CloudWatch."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dataset_check.layout import MANIFEST_NAME
from PIL import Image, ImageOps

from dogbreed.data.synth import synthesize
from dogbreed.local.cloud.monitor_command import invoke_monitor, render
from dogbreed.local.cloud.stack import STACK_NAME
from dogbreed.local.cloud.state import CloudState
from dogbreed.template_stack import TemplateStack

DRIFT_ALARMS = ("ClassDriftAlarm", "ConfidenceDriftAlarm", "ImageDriftAlarm")
# The local SageMaker writes captures once a second; a little more lets the last file land.
CAPTURE_SETTLE_SECONDS = 2.5
FRESH_IMAGES = 48


def fresh_images(dataset: Path, limit: int = FRESH_IMAGES) -> list[bytes]:
    """New photos of the same breeds: the training split of another draw of the demo's synthetic
    dataset (same generator and parameters, the next seed), images the model never saw. (The
    generator's valid and test splits are not drawn quite like its training split: their aspect
    ratios differ measurably, which the image test rightly reports.)"""
    params = json.loads((dataset / MANIFEST_NAME).read_text(encoding="utf-8"))["params"]
    fresh = synthesize(
        dataset.parent / f"{dataset.name}-fresh",
        classes=int(params["classes"]),
        per_class=int(params["per_class"]),
        size=int(params["size"]),
        seed=int(params["seed"]) + 1,
        overwrite=True,
    )
    paths = sorted((fresh / "train").rglob("*.jpg"))
    return [path.read_bytes() for path in paths[:: max(1, len(paths) // limit)][:limit]]


def off_distribution(image: bytes) -> bytes:
    """The image with inverted colours at three times its size."""
    with Image.open(io.BytesIO(image)) as opened:
        buffer = io.BytesIO()
        shown = ImageOps.invert(opened.convert("RGB"))
        shown.resize((shown.width * 3, shown.height * 3)).save(buffer, format="JPEG")
    return buffer.getvalue()


def _send(runtime: Any, endpoint: str, images: list[bytes]) -> None:
    for body in images:
        runtime.invoke_endpoint(EndpointName=endpoint, ContentType="image/jpeg", Body=body)


def alarm_states(cloudwatch: Any, names: list[str]) -> dict[str, str]:
    alarms = cloudwatch.describe_alarms(AlarmNames=names)["MetricAlarms"]
    return {alarm["AlarmName"]: alarm["StateValue"] for alarm in alarms}


def watch_drift(
    state: CloudState, runtime: Any, dataset: Path, say: Callable[[str], None], *, alarm_timeout: float = 45.0
) -> dict[str, Any]:
    endpoint = state.outputs["EndpointName"]
    images = fresh_images(dataset)
    say(f"{len(images)} new images of the training breeds -> endpoint {endpoint} (data capture on)")
    _send(runtime, endpoint, images)
    time.sleep(CAPTURE_SETTLE_SECONDS)
    first_window_end = datetime.now(UTC)
    before = invoke_monitor(state, first_window_end)
    say(render(before))

    say(
        f"the same {len(images)} images, colours inverted, three times the size "
        "(never seen in training) -> endpoint"
    )
    time.sleep(1.0)  # the inverted batch starts after the first window's end (whole seconds)
    _send(runtime, endpoint, [off_distribution(image) for image in images])
    time.sleep(CAPTURE_SETTLE_SECONDS)
    after = invoke_monitor(state)
    say(render(after))

    cloudwatch = state.client("cloudwatch")
    stack = TemplateStack.load(stack_name=STACK_NAME)
    names = [stack.physical_name(logical_id) for logical_id in DRIFT_ALARMS]
    deadline = time.monotonic() + alarm_timeout
    states = alarm_states(cloudwatch, names)
    while time.monotonic() < deadline and "ALARM" not in states.values():
        time.sleep(2.0)
        states = alarm_states(cloudwatch, names)
    for name, value in sorted(states.items()):
        say(f"  alarm {name}: {value}")
    return {"in_distribution": before, "off_distribution": after, "alarms": states}
