"""The job's resumable-upload journal in public.media_job_uploads, on a real database."""

from __future__ import annotations

from utils.storage import UploadRecord
from worker.db import JobStore
from worker.uploads import JobUploadJournal

SHA = "ab" * 32


def test_only_the_lease_holder_records_uploads_and_a_finished_one_is_marked_stored(db_url: str) -> None:
    owner, other = JobStore(db_url, "host:1:owner", 30), JobStore(db_url, "host:2:other", 30)
    try:
        owner.insert_job("video.process", {"input": {"path": "anonymous/x.mp4"}})
        job = owner.claim_next_job()
        assert job is not None
        mine, theirs = JobUploadJournal(owner, job.id), JobUploadJournal(other, job.id)
        assert mine.load("media-outputs", "a/b.mp4") is None
        mine.save("media-outputs", "a/b.mp4", UploadRecord("http://s/upload/1", 10, SHA))
        theirs.save("media-outputs", "a/b.mp4", UploadRecord("http://s/upload/2", 10, SHA))
        assert theirs.load("media-outputs", "a/b.mp4") == UploadRecord("http://s/upload/1", 10, SHA)
        mine.save("media-outputs", "a/b.mp4", UploadRecord("http://s/upload/3", 11, SHA))
        assert mine.load("media-outputs", "a/b.mp4") == UploadRecord("http://s/upload/3", 11, SHA)
        mine.save("media-outputs", "a/b.mp4", UploadRecord("http://s/upload/3", 11, SHA, stored=True))
        theirs.save("media-outputs", "a/b.mp4", UploadRecord("http://s/upload/4", 11, SHA))
        assert mine.load("media-outputs", "a/b.mp4") == UploadRecord("http://s/upload/3", 11, SHA, stored=True)
        mine.save("media-outputs", "a/b.mp4", UploadRecord("http://s/upload/5", 11, SHA))
        assert mine.load("media-outputs", "a/b.mp4") == UploadRecord("http://s/upload/5", 11, SHA), \
            "a new upload of the path is in flight again"
        theirs.clear("media-outputs", "a/b.mp4")
        assert mine.load("media-outputs", "a/b.mp4") is not None, "only the lease holder forgets"
        mine.clear("media-outputs", "a/b.mp4")
        assert mine.load("media-outputs", "a/b.mp4") is None
    finally:
        owner.close()
        other.close()
