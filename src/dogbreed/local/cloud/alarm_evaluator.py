"""CloudWatch alarm evaluation for the local cloud. moto's CloudWatch stores alarms and metric data
but never evaluates an alarm; this does, the way the CloudWatch user guide describes it ("Alarm
evaluation", "Configuring how CloudWatch alarms treat missing data"):

- each of the alarm's last `EvaluationPeriods` periods gives one data point: its `Statistic`
  (Sum, Average, SampleCount, Minimum, Maximum) of the datapoints stored in that period, or missing;
- a data point breaches when it compares to `Threshold` by `ComparisonOperator`; missing ones count
  as `TreatMissingData` says: `breaching`, `notBreaching`, `ignore` (all missing: keep the state)
  or `missing` (the default; all missing: INSUFFICIENT_DATA);
- `DatapointsToAlarm` (default: all of them) breaching data points put the alarm in ALARM, fewer in OK;
- a changed state is set with SetAlarmState, so `describe_alarms` shows it (actions are not run).

Local simplifications, each said in the state reason where it applies: percentile statistics
(`ExtendedStatistic`) read the period's Maximum, an upper bound, because the local CloudWatch keeps no
distributions; with `missing`/`ignore`, CloudWatch looks further back when some points are missing,
this looks only at the evaluation range; metric math and anomaly detection alarms are not evaluated.

Periods may be scaled for tests and demos (`period_scale`, injected by the local cloud's caller:
0.05 turns a 5-minute period into 15 s); a scaled period is whole seconds, at least 1.
"""

from __future__ import annotations

import json
import logging
import math
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from dogbreed.local.background import Ticker

logger = logging.getLogger(__name__)

OK: Final = "OK"
ALARM: Final = "ALARM"
INSUFFICIENT_DATA: Final = "INSUFFICIENT_DATA"
COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    "GreaterThanOrEqualToThreshold": operator.ge,
    "GreaterThanThreshold": operator.gt,
    "LessThanThreshold": operator.lt,
    "LessThanOrEqualToThreshold": operator.le,
}
_STATISTICS = ("SampleCount", "Sum", "Average", "Minimum", "Maximum")


@dataclass(frozen=True)
class Evaluation:
    state: str
    reason: str


def evaluate(
    values: Sequence[float | None],
    *,
    threshold: float,
    comparison: str,
    datapoints_to_alarm: int,
    treat_missing: str = "missing",
) -> Evaluation | None:
    """The alarm's state for its evaluation range (`values`, oldest first, None = missing), or None
    when the alarm keeps its current state (`ignore` with every point missing)."""
    breaches = COMPARISONS[comparison]
    present = [value for value in values if value is not None]
    missing = len(values) - len(present)
    if treat_missing in ("ignore", "missing") and not present:
        if treat_missing == "ignore":
            return None
        return Evaluation(INSUFFICIENT_DATA, f"no datapoint in the last {len(values)} period(s)")
    breaching = sum(1 for value in present if breaches(value, threshold))
    if treat_missing == "breaching":
        breaching += missing
    counted = len(values) if treat_missing in ("breaching", "notBreaching") else len(present)
    state = ALARM if breaching >= datapoints_to_alarm else OK
    shown = [round(v, 3) if v is not None else "missing" for v in values]
    reason = (
        f"{breaching} of {counted} datapoint(s) {shown} breach {comparison} {threshold:g} "
        f"({datapoints_to_alarm} needed; missing data: {treat_missing})"
    )
    return Evaluation(state, reason)


def period_value(datapoint: dict[str, Any] | None, statistic: str) -> float | None:
    """One period's data point from a GetMetricStatistics datapoint (None: no data in the period).
    A percentile reads the Maximum (see the module docstring)."""
    if datapoint is None:
        return None
    key = "Maximum" if statistic.startswith("p") else statistic
    value = datapoint.get(key)
    return None if value is None else float(value)


class AlarmEvaluator:
    """Evaluates every metric alarm of the local CloudWatch, once per `evaluate_all` or on a schedule."""

    def __init__(
        self,
        cloudwatch: Any,
        *,
        period_scale: float = 1.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if period_scale <= 0:
            raise ValueError("period_scale must be positive")
        self._cloudwatch = cloudwatch
        self._scale = period_scale
        self._clock = clock
        self._ticker: Ticker | None = None

    def scaled_period(self, period_seconds: int) -> int:
        return max(1, round(period_seconds * self._scale))

    def evaluate_all(self) -> dict[str, str]:
        """Evaluate each metric alarm and set the changed states; returns alarm name -> state."""
        states: dict[str, str] = {}
        paginator = self._cloudwatch.get_paginator("describe_alarms")
        for page in paginator.paginate(AlarmTypes=["MetricAlarm"]):
            for alarm in page.get("MetricAlarms", []):
                states[alarm["AlarmName"]] = self._evaluate_one(alarm)
        return states

    def _evaluate_one(self, alarm: dict[str, Any]) -> str:
        current: str = alarm.get("StateValue", INSUFFICIENT_DATA)
        if "MetricName" not in alarm or alarm.get("ComparisonOperator") not in COMPARISONS:
            return current  # metric math or anomaly detection: not evaluated locally
        periods = int(alarm["EvaluationPeriods"])
        statistic = str(alarm.get("Statistic") or alarm.get("ExtendedStatistic"))
        values = self._values(alarm, statistic, periods)
        result = evaluate(
            values,
            threshold=float(alarm["Threshold"]),
            comparison=alarm["ComparisonOperator"],
            datapoints_to_alarm=int(alarm.get("DatapointsToAlarm") or periods),
            treat_missing=alarm.get("TreatMissingData", "missing"),
        )
        if result is None or result.state == current:
            return current
        reason = result.reason
        if statistic.startswith("p"):
            reason += " (percentile read as the period's Maximum)"
        self._cloudwatch.set_alarm_state(
            AlarmName=alarm["AlarmName"],
            StateValue=result.state,
            StateReason=reason[:1023],
            StateReasonData=json.dumps({"version": "1.0", "evaluatedDatapoints": len(values)}),
        )
        logger.info("alarm %s: %s -> %s (%s)", alarm["AlarmName"], current, result.state, reason)
        return result.state

    def _values(self, alarm: dict[str, Any], statistic: str, periods: int) -> list[float | None]:
        period = self.scaled_period(int(alarm["Period"]))
        # Whole-second period boundaries (the local CloudWatch compares timestamps to the second), the
        # last period ending after the current second, so a datum of this instant is in it.
        end = self._clock().replace(microsecond=0) + timedelta(seconds=1)
        values: list[float | None] = []
        for index in range(periods, 0, -1):
            start = end - timedelta(seconds=index * period)
            response = self._cloudwatch.get_metric_statistics(
                Namespace=alarm["Namespace"],
                MetricName=alarm["MetricName"],
                Dimensions=alarm.get("Dimensions", []),
                StartTime=start,
                EndTime=start + timedelta(seconds=period),
                Period=period,
                Statistics=list(_STATISTICS),
            )
            datapoints = response.get("Datapoints", [])
            values.append(period_value(datapoints[0] if datapoints else None, statistic))
        return values

    # --- the schedule --------------------------------------------------------------------------
    def start(self, interval_seconds: float) -> None:
        """Run `evaluate_all` every `interval_seconds` in a daemon thread until `stop`."""
        self._ticker = Ticker(self.evaluate_all, interval_seconds, name="alarm-evaluator")

    def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.stop(timeout=10)


def evaluation_interval(period_scale: float) -> float:
    """How often the local cloud evaluates: CloudWatch evaluates about once a minute, scaled like the
    periods, and at least twice per shortest (1 s) scaled period."""
    return min(60.0, max(0.5, math.floor(60 * period_scale) / 2))
