"""What classifying N images costs on AWS through each path, from `dogbreed cost`'s price table.

- S3 drop (`incoming/` -> predict_s3): every billed call of the S3 path's row of `dogbreed cost`
  (dogbreed.cost.serving: Lambda, S3 PUTs and GET, DynamoDB writes, data processed, traces, logs) and
  the endpoint's instance-hours the images keep busy at the scaling target.
- Batch Transform: the transform fleet's instance-hours at a throughput per instance (measured by
  `dogbreed bench batch`, or given), each instance's start-up billed too, one S3 GET per input and
  one S3 PUT per result, the two batch functions (one invocation each per batch) and the state
  machine's transitions. The price table has no Batch Transform column: the type's real-time hosting
  price stands in for it (check the Batch Transform prices of the SageMaker pricing page for your
  region).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final

from dogbreed.cost.prices import price
from dogbreed.cost.serving import S3_PATH, StackFacts, endpoint_row, stack_facts
from dogbreed.template_stack import load_template

# Per batch: PrepareBatch and SummarizeBatch, their billed seconds at 512/1024 MB (a large batch's summary
# reads every output: about 10 ms a read with 32 in parallel).
BATCH_FUNCTION_GB_SECONDS_PER_MILLION: Final = 0.5 * 60 + 1.0 * 400
BATCH_STATE_TRANSITIONS: Final = 12


@dataclass(frozen=True)
class PathCost:
    path: str
    images: int
    usd: float
    detail: str

    @property
    def usd_per_million(self) -> float:
        return self.usd * 1_000_000 / self.images


def drop_path_cost(
    parameters: dict[str, str],
    prices: dict[str, Any],
    facts: StackFacts | None = None,
    images: int = 1_000_000,
) -> PathCost:
    """The S3-drop path: the billed calls of `dogbreed cost`'s S3 row, plus the instance-hours the
    images keep an instance endpoint busy (an archive's share of the fleet, not its idle floor)."""
    row = endpoint_row(S3_PATH, "instance")(parameters, prices, facts or stack_facts(load_template()), images)
    calls = [item for item in row.variable if not item.name.startswith("endpoint")]
    instance_type = parameters["EndpointInstanceType"]
    busy_hours = images / (float(parameters["ScalingTargetInvocationsPerInstance"]) * 60)
    endpoint_usd = busy_hours * price(prices["sagemaker_hosting_per_hour"], instance_type, "hosting")
    usd = sum(item.usd for item in calls) + endpoint_usd
    detail = " + ".join(
        [
            f"endpoint ${endpoint_usd:,.2f} ({instance_type})",
            *(f"{item.name} ${item.usd:,.2f}" for item in calls),
        ]
    )
    return PathCost("S3 drop", images, usd, detail)


def batch_path_cost(
    prices: dict[str, Any],
    *,
    instance_type: str,
    instance_count: int,
    images_per_second_per_instance: float,
    images: int = 1_000_000,
) -> PathCost:
    """Batch Transform: the fleet's instance-hours (start-up included), result PUTs, functions and
    transitions."""
    hourly = float(prices["sagemaker_hosting_per_hour"][instance_type])
    overhead_hours = float(prices["assumptions"]["job_overhead_minutes"]) / 60
    transform_hours = images / images_per_second_per_instance / 3600  # instance-hours, any fleet size
    fleet_usd = (transform_hours + instance_count * overhead_hours) * hourly
    puts = (images + 1) / 1000 * float(prices["s3_per_thousand_put"])
    gets = images / 1000 * float(prices["s3_per_thousand_get"])  # the job reads every input
    millions = max(1, math.ceil(images / 1_000_000))
    functions = millions * BATCH_FUNCTION_GB_SECONDS_PER_MILLION * float(prices["lambda_per_gb_second"])
    transitions = BATCH_STATE_TRANSITIONS / 1000 * float(prices["step_functions_per_thousand_transitions"])
    usd = fleet_usd + puts + gets + functions + transitions
    detail = (
        f"{instance_count} x {instance_type} ${fleet_usd:,.2f} ({transform_hours:,.1f} instance-h at "
        f"{images_per_second_per_instance:,.1f} images/s each + start-up) + S3 PUT ${puts:,.2f} "
        f"+ S3 GET ${gets:,.2f} + functions ${functions:,.2f}"
    )
    return PathCost("Batch Transform", images, usd, detail)
