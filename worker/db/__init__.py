"""Everything that talks to Postgres. psycopg is imported under this package only."""

from worker.db.connection import is_transaction_pooler, ping
from worker.db.jobs import ClaimedJob, Completion, Job, JobStore
from worker.db.migrations import apply_migrations, check_migrations_current
from worker.db.workers import TakenBack, WorkerRegistration, WorkerRow, WorkerStore

__all__ = ["ClaimedJob", "Completion", "Job", "JobStore", "apply_migrations", "check_migrations_current",
           "is_transaction_pooler", "ping", "TakenBack", "WorkerRegistration", "WorkerRow", "WorkerStore"]
