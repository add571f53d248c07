"""The pages: overview, jobs, one job, workers. Each has a live part that static/live.js reloads every
two seconds from the same address with `fragment=1`, so progress moves while you watch."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from worker.cli_workers import presence_state
from worker.dashboard import charts
from worker.dashboard.attempts import attempts_of
from worker.dashboard.views import (
    STATUSES,
    BadFilter,
    decode_cursor,
    encode_cursor,
    filter_query,
    outputs_of,
    pretty_json,
    read_filter,
    since_seconds,
    type_figures,
)
from worker.dashboard.web import render, store_of
from worker.presence import live_job_types, live_seconds
from worker.process_identity import liveness, this_process, workers_by_type

PAGE_SIZE = 50
NOTICES = {
    "retried": "The job is pending again; a worker will pick it up.",
    "retry_refused": "Nothing to retry: the job is not failed or cancelled (any more).",
    "cancelled": "The job is cancelled.",
    "cancel_requested": "Cancel requested: its worker stops it within WORKER_HEARTBEAT_SECONDS.",
    "cancel_refused": "Nothing to cancel: the job has already ended.",
    "retried_many": "failed job(s) are pending again.",
}


def page(request: Request, name: str, context: dict[str, Any]) -> Response:
    """The whole page, or only its live part when static/live.js asks (fragment=1)."""
    notice = request.query_params.get("notice", "")
    context = {"notice": NOTICES.get(notice, ""), "notice_count": request.query_params.get("count", ""),
               "nav": name, **context}
    live = request.query_params.get("fragment") == "1"
    return render(request, f"{name}_live.html" if live else f"{name}.html", context)


def live_window(request: Request) -> float:
    settings = request.app.state.settings
    return live_seconds(settings.worker_heartbeat_seconds, settings.worker_lease_seconds)


def overview(request: Request) -> Response:
    store = store_of(request)
    counts, finished = store.live_counts(), store.finished_by_hour()
    lists = live_job_types(store, live_window(request))
    types = {row["type"] for row in counts} | {row["type"] for row in finished}
    figures = type_figures(counts, finished, workers_by_type(lists, types))
    totals = {status: sum(f.counts.get(status, 0) for f in figures) for status in STATUSES}
    chart = {f.type: (charts.throughput_chart(f.hours), charts.duration_points(f.hours)) for f in figures}
    counted = request.app.state.totals
    return page(request, "overview", {"figures": figures, "totals": totals, "charts": chart,
                                      "all_time": counted.counts, "all_time_totals": counted.by_status(),
                                      "all_time_as_of": counted.as_of, "now": datetime.now(UTC),
                                      "all_jobs": store.estimated_rows(),
                                      "live_workers": len(lists), "statuses": STATUSES,
                                      "live": ("pending", "processing")})


def jobs(request: Request) -> Response:
    query = dict(request.query_params)
    search = query.get("q", "").strip()
    if search:
        try:
            return RedirectResponse(f"/jobs/{UUID(search)}", status_code=303)
        except ValueError:
            return _jobs_page(request, query, error=f"{search!r} is not a job id (a UUID)")
    return _jobs_page(request, query)


def _jobs_page(request: Request, query: dict[str, str], error: str = "") -> Response:
    store = store_of(request)
    rows: list[dict[str, Any]] = []
    where = None
    try:
        where = read_filter(query)
        rows = store.jobs_page(where, decode_cursor(query.get("after")), PAGE_SIZE + 1)
    except BadFilter as exc:
        error = str(exc)
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    filters = filter_query(where) if where else {}
    older = urlencode({**filters, "after": encode_cursor(rows[-1])}) if more else ""
    return page(request, "jobs", {
        "rows": rows, "error": error, "filters": filters, "older": older, "paged": bool(query.get("after")),
        "query": urlencode({**filters, **({"after": query["after"]} if query.get("after") else {})}),
        "statuses": STATUSES, "types": store.job_types(), "now": datetime.now(UTC), "since_seconds": since_seconds})


def job(request: Request) -> Response:
    try:
        job_id = UUID(request.path_params["job_id"])
    except ValueError:
        return render(request, "missing.html", {"what": "no such job", "nav": ""}, status_code=404)
    row = store_of(request).get_job(job_id)
    if row is None:
        return render(request, "missing.html", {"what": f"no job {job_id}", "nav": ""}, status_code=404)
    now = datetime.now(UTC)
    return page(request, "job", {
        "job": row, "attempts": attempts_of(row, now), "outputs": outputs_of(row), "payload": pretty_json(row.payload),
        "result": pretty_json(row.result) if row.result is not None else "",
        "queued": since_seconds(row.created_at, row.started_at or now),
        "running": since_seconds(row.started_at, row.completed_at or now) if row.started_at else None})


def workers(request: Request) -> Response:
    window, here = live_window(request), this_process()
    rows = [(w, presence_state(w.state, w.seen_seconds_ago, window, liveness(w.identity, here)))
            for w in store_of(request).list_workers()]
    return page(request, "workers", {"workers": rows})


ROUTES = [
    Route("/", overview),
    Route("/jobs", jobs),
    Route("/jobs/{job_id}", job),
    Route("/workers", workers),
]
