"""What every route shares: the templates, rendering, the CSRF check and the request's store."""

from __future__ import annotations

import hmac
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse

from worker.dashboard.attempts import duration
from worker.dashboard.views import age
from worker.db.dashboard import DashboardStore

HERE = Path(__file__).parent
CSRF_COOKIE = "mw_csrf"


def templates() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["age"] = age
    env.filters["duration"] = duration
    return env


def render(request: Request, name: str, context: dict[str, Any], status_code: int = 200) -> HTMLResponse:
    """Render templates/{name} with the request and the CSRF token in its context."""
    template = request.app.state.templates.get_template(name)
    html = template.render({"notice": "", "notice_count": "", **context}, request=request,
                           csrf=request.app.state.csrf)
    return HTMLResponse(html, status_code=status_code)


def csrf_valid(request: Request, form: dict[str, str]) -> bool:
    """The form's hidden field and the cookie both carry this process's CSRF token."""
    expected = request.app.state.csrf.encode()
    return hmac.compare_digest(form.get("csrf", "").encode(), expected) and \
        hmac.compare_digest(request.cookies.get(CSRF_COOKIE, "").encode(), expected)


async def read_form(request: Request) -> dict[str, str]:
    """An application/x-www-form-urlencoded body (the dashboard's forms send nothing else)."""
    return dict(parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True))


def store_of(request: Request) -> DashboardStore:
    store: DashboardStore = request.app.state.store
    return store
