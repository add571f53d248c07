"""How one attempt at a job ended, as a value: the runner decides it, the dispatcher records it.

    Outcome
    ├── Completed(result, input_to_delete)  outputs stored; the row becomes `completed`
    ├── Failed(message)                     retrying cannot help; `failed` now
    ├── Retry(message, delay_seconds)       back to `pending` after the delay, or `failed` once
    │                                       max_attempts are used up
    ├── Exhausted()                         taken back from dead workers too often; `failed`
    ├── Cancelled()                         the owner cancelled and the job stopped; `cancelled`
    ├── Released()                          the worker is stopping; `pending`, attempt not counted
    └── Abandoned(reason)                   the lease is gone: another worker owns the job, and
                                            nothing may be written

Each outcome names the statuses its write leaves the row in (`written_as`), so that a write
whose reply was lost can be checked against the row instead of being done twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar


@dataclass(frozen=True)
class Completed:
    """The outputs are stored; `input_to_delete` (bucket, path) goes once the row says so."""

    result: dict[str, Any]
    input_to_delete: tuple[str, str] | None = None
    name: ClassVar[str] = "completed"
    written_as: ClassVar[tuple[str, ...]] = ("completed",)


@dataclass(frozen=True)
class Failed:
    """A permanent failure; `message` tells a person what to do."""

    message: str
    name: ClassVar[str] = "failed"
    written_as: ClassVar[tuple[str, ...]] = ("failed",)


@dataclass(frozen=True)
class Retry:
    """A transient failure: run again after `delay_seconds`, unless the attempts are used up."""

    message: str
    delay_seconds: float
    name: ClassVar[str] = "retry"
    written_as: ClassVar[tuple[str, ...]] = ("pending", "failed", "cancelled")


@dataclass(frozen=True)
class Exhausted:
    """Taken back from dead workers more often than max_attempts allows."""

    name: ClassVar[str] = "failed"
    written_as: ClassVar[tuple[str, ...]] = ("failed",)


@dataclass(frozen=True)
class Cancelled:
    """The owner asked to cancel and the job stopped."""

    name: ClassVar[str] = "cancelled"
    written_as: ClassVar[tuple[str, ...]] = ("cancelled",)


@dataclass(frozen=True)
class Released:
    """The worker is stopping: give the job back without counting the attempt (a pending cancel
    request turns it into `cancelled`)."""

    name: ClassVar[str] = "released"
    written_as: ClassVar[tuple[str, ...]] = ("pending", "cancelled")


@dataclass(frozen=True)
class Abandoned:
    """Our lease is gone; another worker owns the job. Nothing is written."""

    reason: str
    name: ClassVar[str] = "lease_lost"
    written_as: ClassVar[tuple[str, ...]] = ()


Outcome = Completed | Failed | Retry | Exhausted | Cancelled | Released | Abandoned

# The job's row says what happened: webhooks are sent for these.
FINAL_STATES = ("completed", "failed", "cancelled")
