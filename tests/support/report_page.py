"""A report page read back: its charts (data-chart -> PNG bytes) and fields (data-field -> texts)."""

from __future__ import annotations

import base64
from html.parser import HTMLParser

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class ReportPage(HTMLParser):
    """Charts (data-chart -> PNG bytes) and fields (data-field -> text) of a report page."""

    def __init__(self) -> None:
        super().__init__()
        self.charts: dict[str, bytes] = {}
        self.fields: dict[str, list[str]] = {}
        self._chart: str | None = None
        self._field: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "figure" and attributes.get("data-chart"):
            self._chart = attributes["data-chart"]
        if (
            tag == "img"
            and self._chart
            and (attributes.get("src") or "").startswith("data:image/png;base64,")
        ):
            self.charts[self._chart] = base64.b64decode((attributes["src"] or "").split(",", 1)[1])
        field = attributes.get("data-field")
        if field:
            self._field = field
            self.fields.setdefault(field, []).append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "figure":
            self._chart = None
        if tag == "td":
            self._field = None

    def handle_data(self, data: str) -> None:
        if self._field:
            self.fields[self._field][-1] += data


def parse(html: str) -> ReportPage:
    page = ReportPage()
    page.feed(html)
    page.close()
    return page
