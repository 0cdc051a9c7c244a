"""`dogbreed cost`: estimate a pipeline run and serving (idle and at 1M predictions, every path and
endpoint type) for dev and prod; warns on stderr when the price table is older than it allows."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from dogbreed.cost.estimate import ENVIRONMENTS, environment_parameters, estimate
from dogbreed.cost.prices import CostError, load_prices, price_age_warning
from dogbreed.cost.report import format_report


def register(subparsers: Any) -> None:
    cost = subparsers.add_parser(
        "cost",
        help="estimate pipeline, endpoint and per-prediction cost for the deployment parameters",
        description="Cost of one pipeline run (tuning, final training, spot vs on-demand) and of serving "
        "(idle, and 1M predictions with every billed call, on the API and S3 paths with an instance or a "
        "serverless endpoint), for template.yaml defaults with samconfig.toml's dev and prod overrides, "
        "priced from src/dogbreed/cost/prices.json.",
    )
    cost.add_argument(
        "--env", choices=[*ENVIRONMENTS, "all"], default="all", help="environment (default all)"
    )
    cost.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="PARAM=VALUE",
        help="override a template parameter for the estimate (repeatable)",
    )
    cost.add_argument("--json", action="store_true", help="print JSON instead of a table")
    cost.set_defaults(handler=_cost)


def _cost(args: argparse.Namespace) -> int:
    prices = load_prices()
    warning = price_age_warning(prices)
    if warning:
        print(f"dogbreed cost: {warning}", file=sys.stderr)
    names = list(ENVIRONMENTS) if args.env == "all" else [args.env]
    try:
        extra = dict(item.split("=", 1) for item in args.set)
        estimates = [estimate(name, {**environment_parameters(name), **extra}, prices) for name in names]
    except (CostError, ValueError, KeyError) as exc:
        print(f"dogbreed cost: {exc}")
        return 2
    if args.json:
        print(json.dumps([e.to_dict() for e in estimates], indent=2))
    else:
        print(format_report(estimates, prices))
    return 0
