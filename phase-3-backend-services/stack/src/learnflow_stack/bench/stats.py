"""Pure statistics for the benchmark: percentiles, latency summaries, throughput, differences.

All durations are in seconds; nothing here does I/O or reads a clock.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


def percentile(samples: Sequence[float], fraction: float) -> float:
    """The ``fraction`` quantile (0..1) of ``samples`` by linear interpolation between ranks.

    Method: Hyndman & Fan type 7, the default of numpy (``method="linear"``), R and Excel's
    PERCENTILE.INC, and ``statistics.quantiles(method="inclusive")``. With the samples sorted
    as x[0..n-1], the quantile sits at fractional rank h = (n - 1) * fraction and is
    x[floor h] + (h - floor h) * (x[floor h + 1] - x[floor h]). It never leaves the observed
    range: p0 is the minimum, p100 the maximum, and a single sample is every percentile.
    """
    if not samples:
        raise ValueError("percentile of no samples is undefined")
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be within 0..1, got {fraction}")
    ordered = sorted(samples)
    rank = (len(ordered) - 1) * fraction
    lower = math.floor(rank)
    upper = min(lower + 1, len(ordered) - 1)
    return ordered[lower] + (rank - lower) * (ordered[upper] - ordered[lower])


@dataclass(frozen=True)
class LatencySummary:
    count: int
    p50: float
    p95: float
    p99: float
    mean: float
    maximum: float


def summarize(latencies: Sequence[float]) -> LatencySummary | None:
    """p50/p95/p99, mean and maximum of ``latencies``; None when nothing was measured."""
    if not latencies:
        return None
    return LatencySummary(
        count=len(latencies),
        p50=percentile(latencies, 0.50),
        p95=percentile(latencies, 0.95),
        p99=percentile(latencies, 0.99),
        mean=math.fsum(latencies) / len(latencies),
        maximum=max(latencies),
    )


def throughput(completed: int, elapsed_seconds: float) -> float:
    """Completed operations per second of wall-clock time; 0.0 when nothing completed."""
    if completed < 0:
        raise ValueError(f"completed must not be negative, got {completed}")
    if completed == 0:
        return 0.0
    if elapsed_seconds <= 0:
        raise ValueError(f"{completed} operations cannot complete in {elapsed_seconds}s")
    return completed / elapsed_seconds


@dataclass(frozen=True)
class PercentileDifference:
    """``measured`` minus ``baseline`` at each percentile: the cost the measured path adds."""

    p50: float
    p95: float
    p99: float


def difference(measured: LatencySummary, baseline: LatencySummary) -> PercentileDifference:
    return PercentileDifference(
        p50=measured.p50 - baseline.p50,
        p95=measured.p95 - baseline.p95,
        p99=measured.p99 - baseline.p99,
    )


def scaled_count(base: int, scale: float, minimum: int = 1) -> int:
    """``base`` operations scaled by ``scale`` (the --requests factor), never below ``minimum``."""
    if scale <= 0:
        raise ValueError(f"scale must be positive, got {scale}")
    return max(minimum, round(base * scale))
