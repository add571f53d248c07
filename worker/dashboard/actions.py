"""Retry, cancel and retry-every-failed-job-matching-the-filter, and the outputs' files.

Each action is a GET that asks for confirmation, then a POST with the CSRF token that calls the same
JobStore method as `python worker.py retry` / `cancel`, then a redirect to a page that says what
happened. Files: in local mode served from WORKER_DATA_DIR/storage/{bucket} (never outside that
folder); with Supabase Storage, a redirect to a short-lived signed URL.
"""

from __future__ import annotations

import mimetypes
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from utils.storage import TEMP_PREFIX, StorageError, safe_object_path
from worker.dashboard.views import BadFilter, filter_query, read_filter
from worker.dashboard.web import csrf_valid, read_form, render, store_of
from worker.runtime import OUTPUT_BUCKET, local_storage_root, open_storage

RETRY_MANY_LIMIT = 500  # jobs one "retry every failed job" click retries; click again for more
SIGNED_URL_SECONDS = 300
FILE_POLICY = "sandbox; default-src 'none'; img-src 'self'; media-src 'self'"
VERBS = {"retry": "Retry", "cancel": "Cancel"}


def _job_id(request: Request) -> UUID | None:
    try:
        return UUID(request.path_params["job_id"])
    except ValueError:
        return None


def refused(reason: str) -> Response:
    return PlainTextResponse(f"refused: {reason}", status_code=403)


def confirm_job_action(request: Request) -> Response:
    job_id, action = _job_id(request), request.path_params["action"]
    row = store_of(request).get_job(job_id) if job_id else None
    if row is None or action not in VERBS:
        return render(request, "missing.html", {"what": "no such job or action", "nav": ""}, status_code=404)
    return render(request, "confirm.html", {
        "nav": "", "title": f"{VERBS[action]} job {row.id}?", "action": f"/jobs/{row.id}/{action}",
        "button": VERBS[action], "hidden": {}, "job": row,
        "detail": f"{row.type}, {row.status}, attempt {row.attempts}/{row.max_attempts}"})


async def job_action(request: Request) -> Response:
    """POST /jobs/{id}/retry|cancel: the CLI's retry_job / request_cancel; then the job's page with the outcome."""
    form = await read_form(request)
    if not csrf_valid(request, form):
        return refused("missing or wrong CSRF token; reload the page and confirm again")
    job_id, action = _job_id(request), request.path_params["action"]
    if job_id is None or action not in VERBS:
        return PlainTextResponse("no such job or action", status_code=404)
    store = store_of(request)
    if action == "retry":
        notice = "retried" if store.retry_job(job_id) else "retry_refused"
    else:
        status = store.request_cancel(job_id)
        notice = {"cancelled": "cancelled", "processing": "cancel_requested"}.get(status or "", "cancel_refused")
    return RedirectResponse(f"/jobs/{job_id}?notice={notice}", status_code=303)


def confirm_retry_failed(request: Request) -> Response:
    try:
        where = read_filter(dict(request.query_params))
    except BadFilter as exc:
        return PlainTextResponse(str(exc), status_code=400)
    count = len(store_of(request).failed_matching(where, RETRY_MANY_LIMIT + 1))
    shown = f"more than {RETRY_MANY_LIMIT} (this retries the oldest {RETRY_MANY_LIMIT})" \
        if count > RETRY_MANY_LIMIT else str(count)
    hidden = {k: v for k, v in filter_query(where).items() if k != "status"}
    return render(request, "confirm.html", {
        "nav": "", "title": "Retry every failed job matching the filter?", "action": "/actions/retry-failed",
        "button": "Retry them", "hidden": hidden, "job": None,
        "detail": f"{shown} failed job(s) match" + "".join(f"; {k} = {v}" for k, v in hidden.items())})


async def retry_failed(request: Request) -> Response:
    """POST: retry (JobStore.retry_job) up to RETRY_MANY_LIMIT failed jobs matching the posted filter."""
    form = await read_form(request)
    if not csrf_valid(request, form):
        return refused("missing or wrong CSRF token; reload the page and confirm again")
    try:
        where = read_filter({k: v for k, v in form.items() if k != "status"})
    except BadFilter as exc:
        return PlainTextResponse(str(exc), status_code=400)
    store = store_of(request)
    retried = sum(1 for job_id in store.failed_matching(where, RETRY_MANY_LIMIT) if store.retry_job(job_id))
    query = {**filter_query(where), "status": "failed", "notice": "retried_many", "count": str(retried)}
    return RedirectResponse(f"/jobs?{urlencode(query)}", status_code=303)


def output_file(request: Request) -> Response:
    """An output object: the file itself in local mode, a signed URL's redirect with Supabase Storage."""
    bucket, path = request.path_params["bucket"], request.path_params["path"]
    if bucket != OUTPUT_BUCKET:
        return PlainTextResponse(f"only {OUTPUT_BUCKET} objects are served", status_code=404)
    settings = request.app.state.settings
    try:
        safe_object_path(path)
        if not settings.local_storage:
            return RedirectResponse(_storage(request).signed_url(bucket, path, SIGNED_URL_SECONDS), status_code=302)
    except StorageError as exc:
        return PlainTextResponse(f"cannot serve {bucket}/{path}: {exc}", status_code=404)
    folder = (local_storage_root(settings) / bucket).resolve()
    target = (folder / path).resolve()
    if not target.is_relative_to(folder) or not target.is_file() or target.name.startswith(TEMP_PREFIX):
        return PlainTextResponse(f"no object {bucket}/{path}", status_code=404)
    kind = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
    return FileResponse(target, media_type=kind, headers={"Content-Security-Policy": FILE_POLICY})


def _storage(request: Request) -> Any:
    state = request.app.state
    if state.storage is None:
        state.storage = open_storage(state.settings, store_of(request).bucket_rules())
    return state.storage


ROUTES = [
    Route("/jobs/{job_id}/{action}", confirm_job_action, methods=["GET"]),
    Route("/jobs/{job_id}/{action}", job_action, methods=["POST"]),
    Route("/actions/retry-failed", confirm_retry_failed, methods=["GET"]),
    Route("/actions/retry-failed", retry_failed, methods=["POST"]),
    Route("/files/{bucket}/{path:path}", output_file),
]
