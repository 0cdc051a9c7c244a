"""`dogbreed report`: one static HTML page on a model version (collect.py reads the stack, render.py
draws the page, `write_report` does both)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def write_report(clients: Any, outputs: dict[str, str], model_version: str | None, out: Path | None) -> Path:
    """Collect and render the page of `model_version` (the latest when None) into `out` (default
    reports/<version>.html); `clients(service)` gives boto3 clients, `outputs` the stack's outputs."""
    from dogbreed.report.collect import collect
    from dogbreed.report.render import render_html

    data = collect(clients, outputs, model_version, datetime.now(UTC))
    path = out or Path("reports") / f"{data.model_version}.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(data), encoding="utf-8")
    return path
