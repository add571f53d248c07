"""Storage retention's reads and row deletes (SQL in queries_retention.py), on a connection of its own.

A pass runs in one transaction that holds the housekeeping advisory lock, so one worker at a time
does it, and a lost connection ends the pass with the lock released. Objects are never deleted here.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import psycopg

from worker.db import queries_operations, queries_retention
from worker.db.connection import connect, translate_errors


@dataclass(frozen=True)
class ObjectRow:
    """An object as a candidate for deletion: its path in the bucket, size in bytes and age in seconds."""

    path: str
    size: int
    age_seconds: float


@dataclass(frozen=True)
class ExpiredJob:
    """A finished job past its retention, and the folder of its outputs ({owner}/{job_id}/)."""

    id: UUID
    folder: str
    age_seconds: float


@dataclass(frozen=True)
class BucketUsage:
    """What one bucket holds: objects and bytes."""

    bucket: str
    objects: int
    bytes: int


def _object(row: dict[str, Any]) -> ObjectRow:
    return ObjectRow(row["path"], int(row["size"]), float(row["age_seconds"]))


def like_prefix(folder: str) -> str:
    """A LIKE pattern matching every name under folder, its wildcards escaped."""
    return folder.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


class RetentionStore:
    """The retention pass's statements on one autocommit connection, opened on first use; one thread only.

    Raises DatabaseUnavailable when the server cannot be reached."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._conn: psycopg.Connection[dict[str, Any]] | None = None

    def __enter__(self) -> RetentionStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _connection(self) -> psycopg.Connection[dict[str, Any]]:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = connect(self.url, application_name="media-worker-retention")
        return self._conn

    def _execute(self, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        with translate_errors():
            cur = self._connection().execute(sql, params)
            return cur.fetchall() if cur.pgresult is not None and cur.pgresult.nfields else []

    @contextmanager
    def exclusive(self) -> Iterator[bool]:
        """A transaction holding the housekeeping lock for the pass; yields False (holding nothing) when another
        worker has it. An exception from the body rolls the transaction back."""
        with translate_errors():
            conn = self._connection()
            with conn.transaction():
                row = conn.execute(queries_operations.HOUSEKEEPING_LOCK).fetchone()
                yield bool(row and row["locked"])

    def old_uploads(self, bucket: str, older_than_seconds: float, after: str, limit: int) -> list[ObjectRow]:
        """storage.objects of bucket older than older_than_seconds that no pending or processing job names."""
        return [_object(row) for row in self._execute(queries_retention.OLD_UPLOADS, {
            "bucket": bucket, "older_than_seconds": older_than_seconds, "after": after, "limit": limit})]

    def unnamed_uploads(self, bucket: str, paths: list[str]) -> set[str]:
        """Those of paths (in bucket) that no pending or processing job names as its input."""
        rows = self._execute(queries_retention.UNNAMED_UPLOADS, {"bucket": bucket, "paths": paths})
        return {row["path"] for row in rows}

    def expired_jobs(self, retention_seconds: float, failed_retention_seconds: float, after: UUID,
                     limit: int) -> list[ExpiredJob]:
        """Finished jobs past retention, by id after `after`, with their outputs' folder."""
        rows = self._execute(queries_retention.EXPIRED_JOBS, {
            "retention_seconds": retention_seconds, "failed_retention_seconds": failed_retention_seconds,
            "after": after, "limit": limit})
        return [ExpiredJob(row["id"], row["folder"], float(row["age_seconds"])) for row in rows]

    def objects_under(self, bucket: str, folders: list[str]) -> list[ObjectRow]:
        """storage.objects of bucket under any of these folders ('a/b/')."""
        rows = self._execute(queries_retention.OBJECTS_UNDER, {
            "bucket": bucket, "patterns": [like_prefix(folder) for folder in folders]})
        return [_object(row) for row in rows]

    def delete_expired_jobs(self, ids: list[UUID], retention_seconds: float,
                            failed_retention_seconds: float) -> set[UUID]:
        """Delete these rows if they are still past retention; the ids deleted."""
        rows = self._execute(queries_retention.DELETE_EXPIRED_JOBS, {
            "ids": ids, "retention_seconds": retention_seconds,
            "failed_retention_seconds": failed_retention_seconds})
        return {row["id"] for row in rows}

    def count_old_jobs(self, retention_seconds: float, failed_retention_seconds: float) -> int:
        """How many rows today's housekeeping (DELETE_OLD_JOBS) would delete now."""
        rows = self._execute(queries_retention.COUNT_OLD_JOBS, {
            "retention_seconds": retention_seconds, "failed_retention_seconds": failed_retention_seconds})
        return int(rows[0]["jobs"])

    def bucket_usage(self, buckets: list[str]) -> list[BucketUsage]:
        """What each of these buckets holds, from storage.objects (an empty bucket: zeros)."""
        rows = self._execute(queries_retention.BUCKET_USAGE, {"buckets": buckets})
        held = {row["bucket"]: (int(row["objects"]), int(row["bytes"])) for row in rows}
        return [BucketUsage(bucket, *held.get(bucket, (0, 0))) for bucket in buckets]
