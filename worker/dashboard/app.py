"""The dashboard's web application: Starlette routes, Jinja2 templates (autoescaped), access control.

Every request but /healthz and /static needs DASHBOARD_TOKEN when it is set (HTTP Basic, any user name,
the token as password; or `Authorization: Bearer <token>`). Every POST needs the CSRF token: a random
value made at start, sent in a SameSite=Strict cookie and in each form's hidden field, both checked.
Pages send a Content-Security-Policy that allows only this origin's scripts (static/live.js).
"""

from __future__ import annotations

import base64
import hmac
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from worker.config import Settings
from worker.dashboard import actions, pages
from worker.dashboard.totals import AllTimeCounts
from worker.dashboard.web import CSRF_COOKIE, templates
from worker.db.dashboard import DashboardStore
from worker.errors import DatabaseUnavailable

HERE = Path(__file__).parent
OPEN_PATHS = ("/healthz", "/static/")
PAGE_POLICY = ("default-src 'self'; img-src 'self' data: https:; media-src 'self' https:; style-src 'self'; "
               "script-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")


def token_accepted(header: str, token: str) -> bool:
    """Whether an Authorization header carries the token (Bearer, or Basic with it as the password)."""
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer":
        return hmac.compare_digest(value.strip().encode(), token.encode())
    if scheme.lower() == "basic":
        try:
            password = base64.b64decode(value.strip(), validate=True).decode().partition(":")[2]
        except (ValueError, UnicodeDecodeError):
            return False
        return hmac.compare_digest(password.encode(), token.encode())
    return False


class Guard(BaseHTTPMiddleware):
    """Access token, CSRF cookie and security headers on every response."""

    async def dispatch(self, request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        token = request.app.state.settings.dashboard_token
        if token and not request.url.path.startswith(OPEN_PATHS) and \
                not token_accepted(request.headers.get("authorization", ""), token):
            return PlainTextResponse("a DASHBOARD_TOKEN is needed (HTTP Basic password or Bearer token)",
                                     status_code=401, headers={"WWW-Authenticate": 'Basic realm="media worker"'})
        response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", PAGE_POLICY)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers.setdefault("Cache-Control", "no-store")
        if request.cookies.get(CSRF_COOKIE) != request.app.state.csrf:
            response.set_cookie(CSRF_COOKIE, request.app.state.csrf, httponly=True, samesite="strict", path="/")
        return response


def healthz(request: Request) -> Response:
    return PlainTextResponse("ok")


def database_unavailable(request: Request, exc: Exception) -> Response:
    """The database is unreachable: say so (the page's live part keeps its last content and retries)."""
    return PlainTextResponse(f"database unavailable: {exc}; retrying on the next request", status_code=503)


def create_app(settings: Settings, url: str) -> Starlette:
    """The dashboard on the migrated database at `url`."""
    totals = AllTimeCounts(lambda: DashboardStore(url, "dashboard-counts", settings.worker_lease_seconds))

    @asynccontextmanager
    async def counting(_: Starlette) -> AsyncIterator[None]:
        totals.start()
        try:
            yield
        finally:
            totals.stop()

    app = Starlette(lifespan=counting, routes=[
        Route("/healthz", healthz),
        *pages.ROUTES,
        *actions.ROUTES,
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ], middleware=[Middleware(Guard)], exception_handlers={DatabaseUnavailable: database_unavailable})
    state: Any = app.state
    state.settings = settings
    state.store = DashboardStore(url, "dashboard", settings.worker_lease_seconds)
    state.totals = totals
    state.templates = templates()
    state.csrf = secrets.token_urlsafe(32)
    state.storage = None  # opened on the first file request (worker/dashboard/actions.py)
    return app


def serve(settings: Settings, url: str) -> None:
    """Serve until SIGINT/SIGTERM (uvicorn's own signal handling), on DASHBOARD_HOST:DASHBOARD_PORT."""
    uvicorn.run(create_app(settings, url), host=settings.dashboard_host, port=settings.dashboard_port,
                log_level="warning", access_log=False, server_header=False, proxy_headers=False)
