"""The drift report of one window of captured traffic against the training baseline.

Per record (`observe`, as soon as it is read, so a window's images are never held at once): the
model version, top-1 class and confidence come from the captured response (the endpoint's JSON,
`{"model_version", "predictions": [{"class_index", "probability"}, ...]}`), the image statistics from
the captured request body. Observations of another model version are counted, not compared; those
whose response cannot be read are counted as unreadable.

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
class Observation:
    """What the report needs of one captured record: `model_version` None when the response names
    none, `top1` (class index, confidence) None when it holds no readable prediction."""

    model_version: str | None
    top1: tuple[int, float] | None
    stats: dict[str, float] | None


def _response(record: CaptureRecord) -> dict[str, Any] | None:
    if record.endpoint_output is None:
        return None
    try:
        body = json.loads(record.endpoint_output.body())
    except (ValueError, CaptureFormatError):
        return None
    return body if isinstance(body, dict) else None


def _top1(body: dict[str, Any]) -> tuple[int, float] | None:
    try:
        best = max(body["predictions"], key=lambda p: float(p["probability"]))
        return int(best["class_index"]), float(best["probability"])
    except (ValueError, KeyError, TypeError):
        return None


def observe(record: CaptureRecord) -> Observation:
    body = _response(record) or {}
    version = body.get("model_version")
    top1 = _top1(body)
    return Observation(
        version if isinstance(version, str) else None, top1, _stats(record) if top1 is not None else None
    )


def _stats(record: CaptureRecord) -> dict[str, float] | None:
    if record.endpoint_input is None or record.endpoint_input.encoding != "BASE64":
        return None
    try:
        return image_stats(record.endpoint_input.body())
    except (ImageStatsError, CaptureFormatError):
        return None


def drift_report(
    baseline: Baseline,
    observed: Iterable[Observation],
    *,
    corrupt_lines: int = 0,
    thresholds: Thresholds = Thresholds(),
) -> DriftReport:
    report = DriftReport(model_version=baseline.model_version, corrupt_lines=corrupt_lines)
    observations: list[tuple[int, float, dict[str, float] | None]] = []
    classes = len(baseline.classes)
    for observation in observed:
        if observation.top1 is None or observation.model_version is None:
            report.unreadable += 1
            continue
        if observation.model_version != baseline.model_version:
            report.other_versions += 1
            continue
        class_index, confidence = observation.top1
        if not 0 <= class_index < classes:
            report.unreadable += 1
            continue
        observations.append((class_index, confidence, observation.stats))
    report.records = len(observations)
    report.images = sum(1 for _, _, stats in observations if stats is not None)
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
    for class_index, _, _ in observations:
        class_counts[class_index] += 1
    report.class_js = jensen_shannon(baseline.class_priors, class_counts)
    report.class_psi = population_stability_index(baseline.class_priors, class_counts)
    confidences = [confidence for _, confidence, _ in observations]
    confidence_counts = histogram(confidences, baseline.confidence_edges)
    report.confidence_js = jensen_shannon(baseline.confidence_histogram, confidence_counts)
    report.confidence_psi = population_stability_index(baseline.confidence_histogram, confidence_counts)
    if report.images:
        corrected_alpha = thresholds.ks_alpha / len(FEATURES)
        for name in FEATURES:
            sample = [stats[name] for _, _, stats in observations if stats is not None]
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
