"""The worker's errors, as one tree.

    MediaWorkerError
    ├── ConfigError               bad environment; the process exits 2 before doing anything
    ├── MigrationsNotCurrent      the database lacks media_jobs or pending migrations exist
    ├── JobRefused                the database refused a new job (validation, a dedupe_key in use)
    └── JobError                  raised while running one job; decides the job's next state
        ├── PermanentJobError     the job becomes `failed` now; retrying cannot help
        │   ├── UnknownJobType
        │   ├── InvalidPayload
        │   ├── InputRejected     the input file fails the probe gate, or ffmpeg cannot read it
        │   └── StorageRejected   Storage refused for good (4xx: too large, MIME, auth, missing)
        ├── TransientJobError     the job goes back to `pending` with backoff until max_attempts
        │   ├── StorageUnavailable   network errors, 5xx, lock conflicts, timeouts
        │   └── DatabaseUnavailable
        └── JobInterrupted        the worker must stop the job and write nothing more itself
            ├── LeaseLost         another worker owns the job now
            ├── CancelRequested   the owner cancelled; the job becomes `cancelled`
            └── ShutdownRequested the worker is stopping; the job is released to `pending`

Lower layers (utils/) raise their own exceptions; the runner translates them once,
with `raise X from exc`.
"""

from __future__ import annotations


class MediaWorkerError(Exception):
    """Base of every error the worker raises on purpose."""


class ConfigError(MediaWorkerError):
    """One or more environment variables are invalid."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(
            f"invalid configuration ({len(problems)} problem{'s' if len(problems) > 1 else ''}):\n{lines}\n"
            "Fix these environment variables (or .env) and start again; `python worker.py config` shows all of them.")


class MigrationsNotCurrent(MediaWorkerError):
    """The database is missing media_jobs or has migrations pending."""


class JobRefused(MediaWorkerError):
    """The database refused to insert a job; the message carries its reason and hint."""


class JobError(MediaWorkerError):
    """Raised while running a job."""


class PermanentJobError(JobError):
    """Retrying cannot help: the job fails now."""


class UnknownJobType(PermanentJobError):
    """No handler is registered for the job's type."""


class InvalidPayload(PermanentJobError):
    """The payload does not match the handler's schema."""


class InputRejected(PermanentJobError):
    """The input is not a media file the worker accepts."""


class StorageRejected(PermanentJobError):
    """Storage refused the request for good."""


class TransientJobError(JobError):
    """Might work later: the job is retried with backoff."""


class StorageUnavailable(TransientJobError):
    """Storage did not answer usefully (network, 5xx, timeouts, conflicts)."""


class DatabaseUnavailable(TransientJobError):
    """The database connection was lost."""


class JobInterrupted(JobError):
    """The job must stop now; the reason decides what is written."""


class LeaseLost(JobInterrupted):
    """Our lease is gone: another worker owns the job. Write nothing."""


class CancelRequested(JobInterrupted):
    """The job's owner asked to cancel it."""


class ShutdownRequested(JobInterrupted):
    """The worker is shutting down; release the job."""
