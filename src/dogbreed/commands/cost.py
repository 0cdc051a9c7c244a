"""`dogbreed cost`: estimate a pipeline run, the endpoint floor and 1M predictions for dev and prod."""

from __future__ import annotations

import argparse
import json
from typing import Any

from dogbreed.cost.estimate import (
    ENVIRONMENTS,
    CostError,
    environment_parameters,
    estimate,
    format_table,
    load_prices,
)


def register(subparsers: Any) -> None:
    cost = subparsers.add_parser(
        "cost",
        help="estimate pipeline, endpoint and per-prediction cost for the deployment parameters",
        description="Cost of one pipeline run (tuning, final training, spot vs on-demand), the monthly "
        "endpoint floor and 1M predictions, for template.yaml defaults with samconfig.toml's dev and "
        "prod overrides, priced from src/dogbreed/cost/prices.json.",
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
        print(format_table(estimates, prices))
    return 0
