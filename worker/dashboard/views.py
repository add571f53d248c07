"""What the pages show, as plain values built from rows: filters and cursors read from a query
string, ages, attempts, outputs and the overview's per-type figures. No I/O here."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from worker.db.dashboard import Cursor, JobFilter
from worker.db.jobs import Job

STATUSES = ("pending", "processing", "completed", "failed", "cancelled")
IMAGE_TYPES = ("image/jpeg", "image/png", "image/webp")


class BadFilter(ValueError):
    """A query-string value the jobs page cannot use; its message says which and why."""


def parse_uuid(text: str, what: str) -> UUID:
    try:
        return UUID(text.strip())
    except ValueError:
        raise BadFilter(f"{what} {text!r} is not a UUID") from None


def parse_time(text: str, what: str) -> datetime:
    """An ISO time from the filter form (a datetime-local field has no zone: UTC)."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise BadFilter(f"{what} {text!r} is not a time (YYYY-MM-DDTHH:MM, UTC)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def read_filter(query: Mapping[str, str]) -> JobFilter:
    """The jobs page's filters from its query string; raise BadFilter."""
    status = query.get("status") or None
    if status is not None and status not in STATUSES:
        raise BadFilter(f"status {status!r} is not one of {', '.join(STATUSES)}")
    owner, since, until = query.get("owner"), query.get("since"), query.get("until")
    return JobFilter(status=status, type=query.get("type") or None,
                     owner=parse_uuid(owner, "owner") if owner else None,
                     since=parse_time(since, "from") if since else None,
                     until=parse_time(until, "to") if until else None)


def filter_query(where: JobFilter) -> dict[str, str]:
    """The query-string form of a filter (for links and hidden fields)."""
    values = {"status": where.status, "type": where.type, "owner": str(where.owner) if where.owner else None,
              "since": where.since.isoformat() if where.since else None,
              "until": where.until.isoformat() if where.until else None}
    return {k: v for k, v in values.items() if v}


def encode_cursor(row: Mapping[str, Any]) -> str:
    return f"{row['created_at'].isoformat()}_{row['id']}"


def decode_cursor(text: str | None) -> Cursor | None:
    if not text:
        return None
    at, _, job_id = text.rpartition("_")
    return Cursor(parse_time(at, "cursor"), parse_uuid(job_id, "cursor"))


def age(seconds: float | None) -> str:
    """A short age: 42s, 3.5m, 2.0h, 1.2d."""
    if seconds is None:
        return ""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"


def since_seconds(moment: datetime | None, now: datetime) -> float | None:
    return (now - moment).total_seconds() if moment else None


@dataclass(frozen=True)
class Output:
    """A file a job wrote, with the dashboard's link to it."""

    kind: str
    path: str
    size: int | None
    content_type: str
    href: str

    @property
    def is_image(self) -> bool:
        return self.content_type in IMAGE_TYPES


def outputs_of(job: Job) -> list[Output]:
    """The job's outputs (result.outputs), each linked through /files/{bucket}/{path}."""
    outputs = (job.result or {}).get("outputs") or []
    return [Output(str(o.get("kind", "")), str(o.get("path", "")), o.get("size"), str(o.get("content_type", "")),
                   f"/files/{o.get('bucket', '')}/{o.get('path', '')}")
            for o in outputs if isinstance(o, dict) and o.get("path")]


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str)


@dataclass
class TypeFigures:
    """One job type on the overview: its pending and processing jobs, and those that ended in the last
    24 hours by status; the oldest pending age, live workers, and the last hour's and day's throughput,
    failure rate and duration percentiles."""

    type: str
    counts: dict[str, int] = field(default_factory=dict)
    oldest_pending: float | None = None
    live_workers: int = 0
    hours: list[dict[str, Any]] = field(default_factory=lambda: [_empty_hour(h) for h in range(24)])
    day: dict[str, Any] = field(default_factory=lambda: _empty_hour(None))

    @property
    def last_hour(self) -> dict[str, Any]:
        return self.hours[0]

    @property
    def unserved(self) -> bool:
        """Jobs wait and no live worker takes this type."""
        return self.counts.get("pending", 0) > 0 and self.live_workers == 0


def _empty_hour(hours_ago: int | None) -> dict[str, Any]:
    return {"hours_ago": hours_ago, "completed": 0, "failed": 0, "cancelled": 0, "percentiles": None}


def failure_rate(figures: Mapping[str, Any]) -> float | None:
    ended = figures["completed"] + figures["failed"]
    return figures["failed"] / ended if ended else None


def type_figures(counts: list[dict[str, Any]], finished: list[dict[str, Any]],
                 workers: Mapping[str, int]) -> list[TypeFigures]:
    """The overview's figures per type, from LIVE_COUNTS and FINISHED_BY_HOUR rows and live workers by type."""
    by_type: dict[str, TypeFigures] = {}
    for row in counts:
        figures = by_type.setdefault(row["type"], TypeFigures(row["type"]))
        figures.counts[row["status"]] = int(row["jobs"])
        if row["oldest_pending_seconds"] is not None:
            figures.oldest_pending = float(row["oldest_pending_seconds"])
    for row in finished:
        figures = by_type.setdefault(row["type"], TypeFigures(row["type"]))
        hour = {"hours_ago": row["hours_ago"], "completed": int(row["completed"]), "failed": int(row["failed"]),
                "cancelled": int(row["cancelled"]), "percentiles": row["duration_percentiles"]}
        if row["hours_ago"] is None:
            figures.day = hour
        elif 0 <= row["hours_ago"] < 24:
            figures.hours[row["hours_ago"]] = hour
    for figures in by_type.values():
        figures.live_workers = workers.get(figures.type, 0)
        figures.counts.update({status: figures.day[status] for status in ("completed", "failed", "cancelled")})
    return sorted(by_type.values(), key=lambda f: f.type)
