"""One of moto's CloudWatch answers differs from CloudWatch's and is mended here, pinned to moto
5.2.5 and self-checked.

DescribeAlarms: CloudWatch applies every filter it is given; `StateValue` narrows the alarms named
by `AlarmNames` (or `AlarmNamePrefix`, `ActionPrefix`) to those in that state ("StateValue: Specify
this parameter to receive information only about alarms that are currently in the state that you
specify", CloudWatch API reference). moto 5.2.5 picks one filter in an if/elif chain, so names plus
`StateValue=ALARM` returned every named alarm, and the pipeline's FindRollbackAlarms named alarms in
OK as the ones that fired.
"""

from __future__ import annotations

import inspect
from typing import Any, Final

from moto.cloudwatch.responses import CloudWatchResponse

_ORIGINAL: Final = CloudWatchResponse.describe_alarms
# The lines of moto's method that make the difference; when they go, this fix should go too.
_ONE_FILTER_ONLY: Final = ("elif alarm_names:", "elif state_value:")


def _describe_alarms(self: Any) -> Any:
    result = _ORIGINAL(self)
    state_value = self._get_param("StateValue")
    if state_value:
        alarms: dict[str, list[Any]] = result.result  # type: ignore[assignment]  # {"MetricAlarms": [...], "CompositeAlarms": [...]}
        for key in ("MetricAlarms", "CompositeAlarms"):
            alarms[key] = [alarm for alarm in alarms[key] if alarm.state_value == state_value]
    return result


def check_moto_internals() -> list[str]:
    problems = []
    if CloudWatchResponse.describe_alarms not in (_ORIGINAL, _describe_alarms):
        problems.append("CloudWatchResponse.describe_alarms was replaced by someone else")
    source = inspect.getsource(_ORIGINAL)
    if not all(line in source for line in _ONE_FILTER_ONLY) or "ActionResult(result)" not in source:
        problems.append("moto's describe_alarms changed: re-check whether this fix is still needed")
    return problems


def install() -> None:
    problems = check_moto_internals()
    if problems:
        raise RuntimeError("moto's CloudWatch changed: " + "; ".join(problems))
    CloudWatchResponse.describe_alarms = _describe_alarms  # type: ignore[method-assign]
