"""The price table (`prices.json`): AWS list prices with the date they were taken, and how old that
date may get before `dogbreed cost` warns that the figures may no longer be AWS's."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

PRICES_PATH = Path(__file__).with_name("prices.json")


class CostError(ValueError):
    """A parameter names something the price table does not know."""


def load_prices(path: Path = PRICES_PATH) -> dict[str, Any]:
    prices: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return prices


def price(table: dict[str, float], key: str, what: str) -> float:
    if key not in table:
        raise CostError(f"no {what} price for {key} in prices.json; add it")
    return float(table[key])


def price_age_warning(prices: dict[str, Any], today: dt.date | None = None) -> str | None:
    """A warning when the table's `as_of` date is more than `max_age_days` before `today`."""
    taken = dt.date.fromisoformat(str(prices["as_of"]))
    age = ((today or dt.datetime.now(dt.UTC).date()) - taken).days
    limit = int(prices["max_age_days"])
    if age <= limit:
        return None
    return (
        f"warning: the prices were taken on {taken.isoformat()}, {age} days ago (more than {limit}); "
        "check them against the AWS pricing pages and update src/dogbreed/cost/prices.json"
    )
