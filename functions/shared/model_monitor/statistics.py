"""Named drift statistics over plain Python sequences.

- Population stability index: PSI = sum((a_i - e_i) * ln(a_i / e_i)) over bins of the expected
  (baseline) and actual fractions; empty bins take `EPSILON` so the logarithm is defined. The usual
  reading: < 0.1 no shift, 0.1-0.2 moderate, > 0.2 significant.
- Jensen-Shannon divergence, base 2 (0 = identical, 1 = disjoint): the mean Kullback-Leibler
  divergence of each distribution to their average.
- Two-sample Kolmogorov-Smirnov test: D = the largest distance between the two empirical CDFs, and its
  asymptotic p-value from the Kolmogorov distribution with the effective sample size
  n*m/(n+m) and Stephens' small-sample correction (Numerical Recipes, `kstwo`).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

EPSILON: Final = 1e-4


def normalise(weights: Sequence[float]) -> list[float]:
    """Fractions summing to 1 (all zero: all zero)."""
    total = float(sum(weights))
    return [float(w) / total for w in weights] if total > 0 else [0.0 for _ in weights]


def _same_length(expected: Sequence[float], actual: Sequence[float]) -> None:
    if len(expected) != len(actual) or not expected:
        raise ValueError(
            f"distributions need the same, non-zero number of bins ({len(expected)} vs {len(actual)})"
        )


def population_stability_index(expected: Sequence[float], actual: Sequence[float]) -> float:
    _same_length(expected, actual)
    e = [max(v, EPSILON) for v in normalise(expected)]
    a = [max(v, EPSILON) for v in normalise(actual)]
    return sum((ai - ei) * math.log(ai / ei) for ei, ai in zip(e, a, strict=True))


def jensen_shannon(expected: Sequence[float], actual: Sequence[float]) -> float:
    _same_length(expected, actual)
    p, q = normalise(expected), normalise(actual)
    m = [(pi + qi) / 2 for pi, qi in zip(p, q, strict=True)]

    def kl(x: list[float]) -> float:
        return sum(xi * math.log2(xi / mi) for xi, mi in zip(x, m, strict=True) if xi > 0)

    return max(0.0, min(1.0, (kl(p) + kl(q)) / 2))


def histogram(values: Sequence[float], edges: Sequence[float]) -> list[int]:
    """Counts per bin [edges[i], edges[i+1]); the last bin also holds edges[-1]; values outside the
    edges fall in the first or last bin."""
    bins = len(edges) - 1
    if bins < 1:
        raise ValueError("a histogram needs at least two edges")
    counts = [0] * bins
    for value in values:
        index = bisect.bisect_right(edges, value) - 1
        counts[min(max(index, 0), bins - 1)] += 1
    return counts


@dataclass(frozen=True)
class KsResult:
    statistic: float
    p_value: float


def kolmogorov_smirnov(sample: Sequence[float], reference: Sequence[float]) -> KsResult:
    """Two-sample KS test of `sample` against `reference` (both non-empty)."""
    if not sample or not reference:
        raise ValueError("the Kolmogorov-Smirnov test needs two non-empty samples")
    a, b = sorted(sample), sorted(reference)
    n, m = len(a), len(b)
    distance = 0.0
    for value in sorted(set(a) | set(b)):
        cdf_a = bisect.bisect_right(a, value) / n
        cdf_b = bisect.bisect_right(b, value) / m
        distance = max(distance, abs(cdf_a - cdf_b))
    effective = math.sqrt(n * m / (n + m))
    return KsResult(distance, _kolmogorov_survival((effective + 0.12 + 0.11 / effective) * distance))


def _kolmogorov_survival(x: float) -> float:
    """P(K > x) for the Kolmogorov distribution: 2 * sum((-1)^(k-1) exp(-2 k^2 x^2))."""
    if x < 0.27:  # the series converges slowly here and the value is 1 to 1e-8
        return 1.0
    total = 0.0
    for k in range(1, 101):
        term = math.exp(-2.0 * k * k * x * x)
        total += term if k % 2 else -term
        if term < 1e-12:
            break
    return max(0.0, min(1.0, 2.0 * total))
