"""The drift report of one window of captured traffic against the training baseline.

Per record: the top-1 class and confidence come from the captured response (the endpoint's JSON,
`{"model_version", "predictions": [{"class_index", "probability"}, ...]}`), the image statistics from
the captured request body. Records of another model version are counted, not compared; records whose
response cannot be read are counted as unreadable.

Statistics: Jensen-Shannon divergence and PSI of the predicted-class distribution against the
training split's class priors and of the top-1 confidence histogram against the validation split's;
a two-sample Kolmogorov-Smirnov test per image statistic against the baseline's sample, significant
below `alpha` divided by the number of statistics (Bonferroni). Below `min_records` comparable
records the window is reported as insufficient and no drift figure is computed: on a handful of
requests every distribution looks shifted.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final

from model_monitor.baseline import Baseline
from model_monitor.capture import CaptureFormatError, CaptureRecord
from model_monitor.image_stats import FEATURES, ImageStatsError, image_stats
from model_monitor.statistics import (
    KsResult,
    histogram,
    jensen_shannon,
    kolmogorov_smirnov,
    population_stability_index,
)

NO_DATA: Final = "no-data"
INSUFFICIENT: Final = "insufficient-data"
OK: Final = "ok"
DRIFT: Final = "drift"


@dataclass(frozen=True)
class Thresholds:
    class_js: float = 0.1
    confidence_js: float = 0.1
    # The test runs every window (24 times a day at the default schedule): at 0.001 a window from the
    # training distribution is flagged by chance about once in 40 days, not every few days.
    ks_alpha: float = 0.001
    min_records: int = 30


@dataclass
class DriftReport:
    model_version: str
    status: str = NO_DATA
    records: int = 0
    other_versions: int = 0
    unreadable: int = 0
    corrupt_lines: int = 0
    images: int = 0
    class_js: float | None = None
    class_psi: float | None = None
    confidence_js: float | None = None
    confidence_psi: float | None = None
    image_ks: dict[str, KsResult] = field(default_factory=dict)
    features_drifted: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)

    @property
    def image_ks_max(self) -> float | None:
        return max((result.statistic for result in self.image_ks.values()), default=None)

    def as_dict(self) -> dict[str, Any]:
        return {
            "model_version": self.model_version,
            "status": self.status,
            "records": self.records,
            "other_versions": self.other_versions,
            "unreadable": self.unreadable,
            "corrupt_lines": self.corrupt_lines,
            "images": self.images,
            "class_js": self.class_js,
            "class_psi": self.class_psi,
            "confidence_js": self.confidence_js,
            "confidence_psi": self.confidence_psi,
            "image_ks": {
                name: {"statistic": r.statistic, "p_value": r.p_value} for name, r in self.image_ks.items()
            },
            "features_drifted": self.features_drifted,
            "reasons": self.reasons,
        }


@dataclass(frozen=True)
class _Observation:
    class_index: int
    confidence: float
    stats: dict[str, float] | None


def _top1(record: CaptureRecord) -> tuple[str, int, float]:
    if record.endpoint_output is None:
        raise CaptureFormatError("no endpointOutput")
    try:
        body = json.loads(record.endpoint_output.body())
        best = max(body["predictions"], key=lambda p: float(p["probability"]))
        return str(body["model_version"]), int(best["class_index"]), float(best["probability"])
    except (ValueError, KeyError, TypeError) as error:
        raise CaptureFormatError(f"endpointOutput is not a prediction: {error!r}") from None


def _stats(record: CaptureRecord) -> dict[str, float] | None:
    if record.endpoint_input is None or record.endpoint_input.encoding != "BASE64":
        return None
    try:
        return image_stats(record.endpoint_input.body())
    except (ImageStatsError, CaptureFormatError):
        return None


def drift_report(
    baseline: Baseline,
    records: Iterable[CaptureRecord],
    *,
    corrupt_lines: int = 0,
    thresholds: Thresholds = Thresholds(),
) -> DriftReport:
    report = DriftReport(model_version=baseline.model_version, corrupt_lines=corrupt_lines)
    observations: list[_Observation] = []
    classes = len(baseline.classes)
    for record in records:
        try:
            version, class_index, confidence = _top1(record)
        except CaptureFormatError:
            report.unreadable += 1
            continue
        if version != baseline.model_version:
            report.other_versions += 1
            continue
        if not 0 <= class_index < classes:
            report.unreadable += 1
            continue
        observations.append(_Observation(class_index, confidence, _stats(record)))
    report.records = len(observations)
    report.images = sum(1 for o in observations if o.stats is not None)
    if corrupt_lines:
        report.reasons.append(f"{corrupt_lines} capture line(s) were not capture records")
    if not observations:
        report.status = NO_DATA
        report.reasons.append(f"no captured prediction of model {baseline.model_version} in the window")
        return report
    if report.records < thresholds.min_records:
        report.status = INSUFFICIENT
        report.reasons.append(
            f"{report.records} captured prediction(s), fewer than the {thresholds.min_records} "
            "a drift figure needs"
        )
        return report

    class_counts = [0] * classes
    for observation in observations:
        class_counts[observation.class_index] += 1
    report.class_js = jensen_shannon(baseline.class_priors, class_counts)
    report.class_psi = population_stability_index(baseline.class_priors, class_counts)
    confidence_counts = histogram([o.confidence for o in observations], baseline.confidence_edges)
    report.confidence_js = jensen_shannon(baseline.confidence_histogram, confidence_counts)
    report.confidence_psi = population_stability_index(baseline.confidence_histogram, confidence_counts)
    if report.images:
        corrected_alpha = thresholds.ks_alpha / len(FEATURES)
        for name in FEATURES:
            sample = [o.stats[name] for o in observations if o.stats is not None]
            result = kolmogorov_smirnov(sample, baseline.image_stats[name])
            report.image_ks[name] = result
            if result.p_value < corrected_alpha:
                report.features_drifted.append(name)

    if report.class_js >= thresholds.class_js:
        report.reasons.append(
            f"predicted classes: Jensen-Shannon {report.class_js:.3f} >= {thresholds.class_js}"
        )
    if report.confidence_js >= thresholds.confidence_js:
        report.reasons.append(
            f"top-1 confidence: Jensen-Shannon {report.confidence_js:.3f} >= {thresholds.confidence_js}"
        )
    if report.features_drifted:
        report.reasons.append(
            f"image statistics {', '.join(report.features_drifted)}: Kolmogorov-Smirnov p < "
            f"{thresholds.ks_alpha}/{len(FEATURES)}"
        )
    drifted = (
        report.class_js >= thresholds.class_js
        or report.confidence_js >= thresholds.confidence_js
        or bool(report.features_drifted)
    )
    report.status = DRIFT if drifted else OK
    return report
