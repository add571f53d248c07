"""The worker's errors, as one tree.

    MediaWorkerError
    ├── ConfigError               bad environment; the process exits 2 before doing anything
    ├── MigrationsNotCurrent      the database lacks media_jobs or pending migrations exist
    ├── NoDatabaseHere            a command that only reads found no embedded database (exit 1)
    └── JobRefused                the database refused a new job (validation, a dedupe_key in use)

    JobError *                    raised while running one job; decides the job's next state
    ├── PermanentJobError *       the job becomes `failed` now; retrying cannot help
    │   ├── UnknownJobType *
    │   ├── InvalidPayload *
    │   ├── InputRejected         the input file fails the probe gate, or ffmpeg cannot read it
    │   └── StorageRejected       Storage refused for good (4xx: too large, MIME, auth, missing)
    ├── TransientJobError *       the job goes back to `pending` with backoff until max_attempts
    │   ├── StorageUnavailable    network errors, 5xx, lock conflicts, timeouts
    │   └── DatabaseUnavailable   (also a MediaWorkerError: it is raised outside jobs too)
    └── JobInterrupted            the worker must stop the job and write nothing more itself
        ├── LeaseLost             another worker owns the job now
        ├── CancelRequested       the owner cancelled; the job becomes `cancelled`
        └── ShutdownRequested     the worker is stopping; the job is released to `pending`

* defined in handlers/errors.py and imported here: handlers raise them, and handlers sit
  below the worker, so they cannot import this module.

Lower layers (utils/) raise their own exceptions; the runner translates them once,
with `raise X from exc`.
"""

from __future__ import annotations

from handlers.errors import InvalidPayload, JobError, PermanentJobError, TransientJobError, UnknownJobType


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


class NoDatabaseHere(MediaWorkerError):
    """A command that only reads found no embedded database where it looked (it creates none)."""


class JobRefused(MediaWorkerError):
    """The database refused to insert a job; the message carries its reason and hint."""


class InputRejected(PermanentJobError):
    """The input is not a media file the worker accepts."""


class StorageRejected(PermanentJobError):
    """Storage refused the request for good."""


class StorageUnavailable(TransientJobError):
    """Storage did not answer usefully (network, 5xx, timeouts, conflicts)."""


# Also a MediaWorkerError: the CLI and start-up meet it outside any job and report it as one.
class DatabaseUnavailable(TransientJobError, MediaWorkerError):
    """The database connection was lost."""


class JobInterrupted(JobError):
    """The job must stop now; the reason decides what is written."""


class LeaseLost(JobInterrupted):
    """Our lease is gone: another worker owns the job. Write nothing."""


class CancelRequested(JobInterrupted):
    """The job's owner asked to cancel it."""


class ShutdownRequested(JobInterrupted):
    """The worker is shutting down; release the job."""


__all__ = ["CancelRequested", "ConfigError", "DatabaseUnavailable", "InputRejected", "InvalidPayload", "JobError",
           "JobInterrupted", "JobRefused", "LeaseLost", "MediaWorkerError", "MigrationsNotCurrent",
           "PermanentJobError", "ShutdownRequested", "StorageRejected", "StorageUnavailable", "TransientJobError",
           "UnknownJobType"]
