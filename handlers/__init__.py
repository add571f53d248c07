"""The job types this worker knows, by name.

Built-in handlers register themselves on import; extra ones come from the modules
listed in WORKER_HANDLER_MODULES, each of which calls `register()` at import time.
"""

from __future__ import annotations

import importlib

from handlers.base import Handler
from handlers.errors import UnknownJobType

_REGISTRY: dict[str, Handler] = {}

BUILTIN_MODULES = ("handlers.video_process", "handlers.video_thumbnails", "handlers.video_clips",
                   "handlers.audio_extract", "handlers.video_hls", "handlers.media_probe")


def register(handler: Handler) -> Handler:
    """Make a job type available; registering the same name twice is an error."""
    existing = _REGISTRY.get(handler.name)
    if existing is not None and existing is not handler:
        raise ValueError(f"job type {handler.name!r} is registered twice")
    _REGISTRY[handler.name] = handler
    return handler


def load_handlers(extra_modules: tuple[str, ...] = ()) -> dict[str, Handler]:
    """Import the built-in and extra handler modules; return the registry."""
    for module in (*BUILTIN_MODULES, *extra_modules):
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise ImportError(f"cannot import handler module {module!r} (WORKER_HANDLER_MODULES): {exc}") from exc
    return dict(_REGISTRY)


def get_handler(job_type: str) -> Handler:
    """The handler for a job type; raise UnknownJobType listing the known ones."""
    try:
        return _REGISTRY[job_type]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY)) or "none"
        raise UnknownJobType(f"unknown job type {job_type!r}; this worker handles: {known}") from None
