"""The errors a handler may raise; the worker builds the rest of its tree on them (worker/errors.py).

    JobError                  raised while running one job; its class decides the job's next state
    ├── PermanentJobError     the job becomes `failed` now; retrying cannot help
    │   ├── InvalidPayload
    │   └── UnknownJobType
    └── TransientJobError     the job goes back to `pending` with backoff until max_attempts

They live here, not in worker/, because handlers sit below the worker and import nothing from it.
"""

from __future__ import annotations


class JobError(Exception):
    """Raised while running one job; its class decides the job's next state."""


class PermanentJobError(JobError):
    """Retrying cannot help: the job fails now."""


class TransientJobError(JobError):
    """Might work later: the job is retried with backoff."""


class InvalidPayload(PermanentJobError):
    """The payload does not match the handler's schema."""


class UnknownJobType(PermanentJobError):
    """No handler is registered for the job's type."""
