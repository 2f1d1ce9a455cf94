"""Drift gates that do not fail on sampling noise.

A recipe gate is ``metric = bound``. A metric in :data:`HIGHER_IS_BETTER` must reach its
bound, any other must stay at or under it. Two metrics are rates measured on ``n`` test
examples, and a small ``n`` makes them noisy (with 40 test cases one flipped decision is
2.5 pp of agreement), so they are judged by a 95% confidence bound instead of the point
value -- a gate fails only when the data show the stage is worse than the bound:

* ``agreement >= a`` passes when the Wilson score interval's upper end (z = 1.96) of
  the observed agreement reaches ``a`` (Wilson, JASA 1927; Brown, Cai & DasGupta,
  Stat. Sci. 2001).
* ``accuracy_drop_pp <= d`` passes when the lower end of the paired accuracy change is at
  most ``d``: with ``b`` decisions that turned wrong and ``c`` that turned right,
  ``100 * (b - c - z * sqrt(b + c)) / n`` (McNemar's normal approximation for paired
  proportions).

At large ``n`` both bounds approach the point value (at n = 25,000 an agreement of 0.9950
has an upper bound of 0.9958). Every other metric is compared as measured.
"""

from __future__ import annotations

import math
from typing import Any

HIGHER_IS_BETTER = frozenset(
    {
        "agreement",
        "accuracy",
        "label_agreement",
        "decision_equal_fraction",
        "decision_agreement_vs_litert",
        "within_8_lsb_vs_litert",
    }
)
Z = 1.96


def wilson_upper(successes: int, n: int, z: float = Z) -> float:
    """Upper end of the Wilson score interval for a proportion ``successes / n``."""
    if n <= 0:
        return 1.0
    p = successes / n
    denom = 1.0 + z * z / n
    centre = p + z * z / (2 * n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return min(1.0, (centre + half) / denom)


def drop_lower_pp(flips_to_wrong: int, flips_to_right: int, n: int, z: float = Z) -> float:
    """Lower end of the paired accuracy drop in percentage points (see module docstring)."""
    if n <= 0:
        return 0.0
    b, c = flips_to_wrong, flips_to_right
    return 100.0 * (b - c - z * math.sqrt(b + c)) / n


def judged_value(metric: str, value: float, row: dict[str, Any]) -> float:
    """The value a gate compares with its bound: the noise-aware bound for rates."""
    n = int(row.get("n") or 0)
    if metric == "agreement" and n:
        return wilson_upper(round(value * n), n)
    if metric == "accuracy_drop_pp" and n and "flips_to_wrong" in row:
        return drop_lower_pp(int(row["flips_to_wrong"]), int(row["flips_to_right"]), n)
    return value


def check(name: str, metrics: dict[str, Any], gates: dict[str, float]) -> list[str]:
    """One line per breached gate (empty when all pass); a missing metric is a breach."""
    breaches = []
    for metric, bound in gates.items():
        value = metrics.get(metric)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or math.isnan(value):
            breaches.append(f"{name}: gate on {metric} but the stage has no value")
            continue
        judged = judged_value(metric, float(value), metrics)
        noise = "" if judged == value else f" (95% bound {judged:.4g} at n = {metrics.get('n')})"
        if metric in HIGHER_IS_BETTER and judged < bound:
            breaches.append(f"{name}: {metric} {value:.6g} < {bound:.6g}{noise}")
        elif metric not in HIGHER_IS_BETTER and judged > bound:
            breaches.append(f"{name}: {metric} {value:.6g} > {bound:.6g}{noise}")
    return breaches
