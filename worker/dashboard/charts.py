"""Server-side SVG charts: the geometry of the overview's 24-hour charts, as numbers the template
draws (templates/_charts.html). Oldest hour on the left, the last hour on the right."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

WIDTH, HEIGHT, BAR_GAP = 240, 60, 1


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    title: str


@dataclass(frozen=True)
class Chart:
    """Bars (completed, failed) or polylines (duration percentiles) in a WIDTH x HEIGHT box."""

    completed: list[Bar]
    failed: list[Bar]
    top: str  # the value of the top edge, as a label


def _slot_width(count: int) -> float:
    return WIDTH / count


def throughput_chart(hours: list[dict[str, Any]]) -> Chart:
    """Jobs ended per hour over the last 24 hours: completed, with failed stacked on top."""
    ordered = list(reversed(hours))
    peak = max((h["completed"] + h["failed"] for h in ordered), default=0) or 1
    width = _slot_width(len(ordered))
    completed, failed = [], []
    for i, hour in enumerate(ordered):
        done_h = HEIGHT * hour["completed"] / peak
        fail_h = HEIGHT * hour["failed"] / peak
        label = f"{hour['hours_ago']}h ago: {hour['completed']} completed, {hour['failed']} failed"
        completed.append(Bar(i * width, HEIGHT - done_h, width - BAR_GAP, done_h, label))
        failed.append(Bar(i * width, HEIGHT - done_h - fail_h, width - BAR_GAP, fail_h, label))
    return Chart(completed, failed, f"{peak}/h")


def duration_points(hours: list[dict[str, Any]]) -> tuple[list[tuple[float, float]], list[tuple[float, float]], str]:
    """The p50 and p95 duration per hour as (x, y) points (hours with none are skipped), and the top label."""
    ordered = list(reversed(hours))
    values = [h["percentiles"] for h in ordered]
    peak = max((p[1] for p in values if p), default=0.0) or 1.0
    width = _slot_width(len(ordered))

    def points(index: int) -> list[tuple[float, float]]:
        return [(round(i * width + width / 2, 1), round(HEIGHT - HEIGHT * p[index] / peak, 1))
                for i, p in enumerate(values) if p]

    return points(0), points(1), f"{peak:.1f}s"
