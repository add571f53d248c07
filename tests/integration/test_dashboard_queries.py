"""Every statement of worker/db/queries_dashboard.py, with each filter set and unset, on the migrated schema,
through the dashboard's store (custom plans)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from tests.support.workers import insert_job
from worker.db.dashboard import Cursor, DashboardStore, JobFilter

OWNER = uuid.UUID("00000000-0000-4000-8000-000000000001")


def test_each_filter_selects_its_jobs_newest_first_in_keyset_pages(db_url: str) -> None:
    import psycopg

    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("insert into auth.users (id) values (%s)", (OWNER,))
    now = datetime.now(UTC)
    ids = [insert_job(db_url, "media.probe", {}, status="failed", created_at=now - timedelta(minutes=i),
                      user_id=OWNER if i % 2 else None) for i in range(6)]
    insert_job(db_url, "audio.extract", {}, created_at=now)
    insert_job(db_url, "video.process", {}, status="completed", created_at=now - timedelta(hours=2),
               started_at=now - timedelta(minutes=90, seconds=10), completed_at=now - timedelta(minutes=90))
    store = DashboardStore(db_url, "test", 30)
    try:
        every = JobFilter(status="failed", type="media.probe", owner=OWNER, since=now - timedelta(hours=1),
                          until=now + timedelta(seconds=1))
        first = store.jobs_page(every, None, 2)
        assert [str(r["id"]) for r in first] == [ids[1], ids[3]]
        after = Cursor(first[-1]["created_at"], first[-1]["id"])
        assert [str(r["id"]) for r in store.jobs_page(every, after, 2)] == [ids[5]]
        assert len(store.jobs_page(JobFilter(), None, 50)) == 8
        assert store.jobs_page(JobFilter(since=now + timedelta(minutes=1)), None, 50) == []
        assert [str(i) for i in store.failed_matching(JobFilter(owner=OWNER), 10)] == [ids[5], ids[3], ids[1]]
        assert store.job_types() == ["audio.extract", "media.probe", "video.process"]
        assert {(r["type"], r["status"], r["jobs"]) for r in store.live_counts()} == {("audio.extract", "pending", 1)}
        assert store.estimated_rows() == 8
        hours = {(r["type"], r["hours_ago"]): r for r in store.finished_by_hour()}  # hours_ago None: the whole day
        assert set(hours) == {("video.process", 1), ("video.process", None)}
        assert hours["video.process", 1]["completed"] == 1 and hours["video.process", 1]["failed"] == 0
        assert [round(p, 1) for p in hours["video.process", None]["duration_percentiles"]] == [10.0, 10.0, 10.0]
    finally:
        store.close()
