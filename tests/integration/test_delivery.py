"""Delivery: several uploads at once through a real runner, a real database and the Storage test server
over real sockets; the first failure and a cancel stop every upload; a retry skips what is stored; the HLS
manifest matches the stored bytes; a 2-hour ladder's result stays small."""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pydantic import Field

from handlers import register
from handlers.base import Artifact, Handler, HandlerResult, Manifest, Payload, TaskContext
from handlers.video_hls import ladder_artifacts
from tests.storage_server import StorageServer
from tests.support.media import sha256
from utils.media_plan import hls_ladder
from utils.storage import LocalStorage, Storage
from utils.supabase.storage import SupabaseStorage, open_supabase_storage
from worker.config import Settings, load_settings
from worker.control import Heartbeat, JobControl
from worker.db import ClaimedJob, JobStore
from worker.outcome import Cancelled, Completed, Failed, Outcome
from worker.runner import JobRunner
from worker.runtime import media_settings

KEY = "service-key"
MiB = 1024 * 1024
TYPES = ["video/mp4", "image/jpeg", "application/json", "video/mp2t", "application/vnd.apple.mpegurl"]


class FilesPayload(Payload):
    files: list[tuple[str, int, str]] = Field(description="(name, size, content type) of each output")


def write_files(payload: FilesPayload, ctx: TaskContext) -> HandlerResult:
    """The same pseudo-random bytes for a name on every run, as a deterministic encode writes."""
    artifacts = []
    for name, size, content_type in payload.files:
        path = ctx.work_dir / name
        path.write_bytes(random.Random(name).randbytes(size))
        artifacts.append(Artifact("file", name, path, content_type))
    return HandlerResult(artifacts)


class LadderPayload(Payload):
    segments: int


def write_ladder(payload: LadderPayload, ctx: TaskContext) -> HandlerResult:
    """The files of a 360p/720p/1080p HLS ladder with `segments` tiny segments per rendition."""
    out = ctx.work_dir / "hls"
    ladder = hls_ladder(1920, 1080, [360, 720, 1080])
    (out / "master.m3u8").parent.mkdir(parents=True)
    (out / "master.m3u8").write_text("#EXTM3U\n")
    for rung in ladder:
        (out / rung.name).mkdir()
        (out / rung.name / "index.m3u8").write_text("#EXTM3U\n")
        for n in range(payload.segments):
            (out / rung.name / f"seg_{n:05d}.ts").write_bytes(b"G" * 188)
    return HandlerResult(ladder_artifacts(out, ladder, lambda rung: None),
                         manifest=Manifest("hls_manifest", "hls/manifest.json", out / "manifest.json"))


register(Handler("test.delivery_files", FilesPayload, write_files))
register(Handler("test.delivery_ladder", LadderPayload, write_ladder))


@pytest.fixture
def server() -> Iterator[StorageServer]:
    srv = StorageServer(KEY).start()
    srv.add_bucket("media-uploads")
    srv.add_bucket("media-outputs", 2 * 1024**3, TYPES)
    yield srv
    srv.close()


@pytest.fixture
def store(db_url: str) -> Iterator[JobStore]:
    store = JobStore(db_url, "test:delivery/0", lease_seconds=60)
    yield store
    store.close()


def settings_for(tmp_path: Path, server: StorageServer | None, **env: Any) -> Settings:
    where = {"SUPABASE_URL": server.url, "SUPABASE_SERVICE_ROLE_KEY": KEY,
             "DATABASE_URL": "postgresql://unused@127.0.0.1/unused"} if server else {}
    return load_settings({"WORKER_TEMP_DIR": str(tmp_path / "work"), **where, **{k: str(v) for k, v in env.items()}},
                         env_file=None)


class Runner:
    """A JobRunner as a slot builds one, its heartbeat running, and every backend it opened closed after."""

    def __init__(self, store: JobStore, settings: Settings, storage: Storage | None = None) -> None:
        self.opened: list[SupabaseStorage] = []
        self.settings = settings
        self.heartbeat = Heartbeat(store, 0.2, 60, name="heartbeat-delivery")
        self.heartbeat.start()
        factory = (lambda: storage) if storage is not None else self.open
        self.runner = JobRunner(store, factory(), settings, media_settings(settings), self.heartbeat,
                                storage_factory=factory)

    def open(self) -> Storage:
        self.opened.append(open_supabase_storage(self.settings))
        return self.opened[-1]

    def run(self, job: ClaimedJob, control: JobControl | None = None) -> Outcome:
        return self.runner.run(job, control or JobControl(), {})

    def close(self) -> None:
        self.heartbeat.close()
        for storage in self.opened:
            storage.close()


@pytest.fixture
def runners() -> Iterator[list[Runner]]:
    made: list[Runner] = []
    yield made
    for runner in made:
        runner.close()


def claim(store: JobStore, job_type: str, payload: dict[str, Any]) -> ClaimedJob:
    store.insert_job(job_type, payload)
    job = store.claim_next_job()
    assert job is not None
    return job


def upload_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("upload-")]


def files(count: int, size: int, content_type: str = "video/mp4") -> list[tuple[str, int, str]]:
    return [(f"part_{n:02d}.mp4", size + n, content_type) for n in range(count)]


@pytest.mark.parametrize("concurrency", [1, 3])
def test_uploads_run_up_to_upload_concurrency_at_once_and_keep_the_artifacts_order(
        store: JobStore, server: StorageServer, tmp_path: Path, runners: list[Runner], concurrency: int) -> None:
    server.faults.request_delay_seconds = 0.05  # a round trip, so that uploads in flight overlap
    runners.append(Runner(store, settings_for(tmp_path, server, UPLOAD_CONCURRENCY=concurrency)))
    job = claim(store, "test.delivery_files", {"files": files(12, 20_000)})
    outcome = runners[0].run(job)
    assert isinstance(outcome, Completed), outcome
    outputs = outcome.result["outputs"]
    assert [o["path"] for o in outputs] == [f"anonymous/{job.id}/part_{n:02d}.mp4" for n in range(12)]
    for output in outputs:
        assert output["sha256"] == sha256(server.object_file("media-outputs", output["path"]))
    assert server.max_in_flight == concurrency  # several at once, never more than UPLOAD_CONCURRENCY
    assert not upload_threads()


def test_the_first_failure_stops_the_uploads_in_flight_and_fails_the_job(
        store: JobStore, server: StorageServer, tmp_path: Path, runners: list[Runner]) -> None:
    server.faults.patch_delay_seconds = 0.2
    runners.append(Runner(store, settings_for(tmp_path, server, UPLOAD_CONCURRENCY=2, UPLOAD_CHUNK_SIZE_MB=1,
                                              UPLOAD_RESUMABLE_THRESHOLD_MB=0)))
    # the other thread stores three small files, then is refused the fourth while the large one is under way
    plan = [("large.mp4", 12 * MiB, "video/mp4"), *files(3, 1000), ("refused.txt", 1000, "text/plain")]
    job = claim(store, "test.delivery_files", {"files": plan})
    outcome = runners[0].run(job)
    assert isinstance(outcome, Failed) and "add it to storage.buckets.allowed_mime_types" in outcome.message
    assert not upload_threads()
    (large,) = [u for u in uploads_of(server) if u.path.endswith("large.mp4")]
    assert 0 < large.offset < large.length, "the large upload stopped between chunks"


def test_a_cancel_stops_every_upload_in_flight(store: JobStore, server: StorageServer, tmp_path: Path,
                                              runners: list[Runner]) -> None:
    server.faults.patch_delay_seconds = 0.2
    runners.append(Runner(store, settings_for(tmp_path, server, UPLOAD_CONCURRENCY=3, UPLOAD_CHUNK_SIZE_MB=1,
                                              UPLOAD_RESUMABLE_THRESHOLD_MB=0)))
    job = claim(store, "test.delivery_files", {"files": files(3, 10 * MiB)})
    ended: list[Outcome] = []
    running = threading.Thread(target=lambda: ended.append(runners[0].run(job)))
    running.start()
    try:
        wait_for(lambda: len([u for u in uploads_of(server) if u.offset > 0]) == 3, "three uploads under way")
        store.request_cancel(job.id)
    finally:
        running.join(timeout=60)
    assert ended == [Cancelled()]
    assert not upload_threads()
    assert not list((server.root / "objects").rglob("part_*"))
    stopped = [u for u in uploads_of(server) if u.path.startswith(f"anonymous/{job.id}/")]
    assert len(stopped) == 3 and all(u.offset < u.length for u in stopped)


def uploads_of(server: StorageServer) -> list[Any]:
    """The server's uploads, copied while its threads may be adding one (a dict cannot be read then)."""
    while True:
        try:
            return list(server.uploads.values())
        except RuntimeError:  # "dictionary changed size during iteration": read it again
            continue


def wait_for(predicate: Any, what: str) -> None:
    from tests.support.workers import wait_until

    wait_until(predicate, timeout=60, what=what)


def take_back(db: psycopg.Connection[Any], store: JobStore, job: ClaimedJob) -> ClaimedJob:
    """The job's next attempt, as another worker claims it once the lease ran out."""
    db.execute("update public.media_jobs set locked_until = now() - interval '1 second' where id = %s", (job.id,))
    again = store.claim_next_job()
    assert again is not None and again.attempts == job.attempts + 1
    return again


@pytest.mark.parametrize("route", ["standard", "resumable", "streamed"])  # where the sha256 metadata is sent
def test_a_retry_skips_the_outputs_stored_with_the_same_size_and_sha256(
        db: psycopg.Connection[Any], store: JobStore, server: StorageServer, tmp_path: Path, runners: list[Runner],
        route: str) -> None:
    server.faults.no_tus = route == "streamed"  # a server without TUS: one raw request with x-metadata
    threshold = 6 if route == "standard" else 0
    runners.append(Runner(store, settings_for(tmp_path, server, UPLOAD_CONCURRENCY=2,
                                              UPLOAD_RESUMABLE_THRESHOLD_MB=threshold)))
    first = claim(store, "test.delivery_files", {"files": files(6, 30_000)})
    stored_first = runners[0].run(first)
    assert isinstance(stored_first, Completed)
    folder = f"anonymous/{first.id}"
    assert not server.requests("GET", "/object/info/"), "a first attempt asks nothing before or after uploading"
    if route == "resumable":  # the object carries no sha256; the job's journal vouches for what it stored
        rows = db.execute("select path, size, sha256, stored_at is not null as stored from public.media_job_uploads"
                          " where job_id = %s order by path", (first.id,)).fetchall()
        assert [(r["path"], r["size"], r["stored"]) for r in rows] == [
            (f"{folder}/part_{n:02d}.mp4", 30_000 + n, True) for n in range(6)]
        assert [r["sha256"] for r in rows] == [o["sha256"] for o in stored_first.result["outputs"]]
    server.delete_objects("media-outputs", [f"{folder}/part_00.mp4"])
    # Other bytes: of the same size where the object's metadata decides (a resumable upload's journal
    # cannot see a same-size overwrite by someone else: docs/storage.md).
    server.put_object("media-outputs", f"{folder}/part_01.mp4", b"x" * (30_002 if route == "resumable" else 30_001))
    server.user_metadata[("media-outputs", f"{folder}/part_02.mp4")] = {"sha256": "0" * 64}
    sent = len(server.log)
    outcome = runners[0].run(take_back(db, store, first))
    assert isinstance(outcome, Completed), outcome
    posts = [entry[1] for entry in server.log[sent:] if entry[0] == "POST"]
    if route == "resumable":
        assert len(posts) == 3 and all(p.endswith("/upload/resumable") for p in posts)
    else:
        uploads = {p.rsplit("/", 1)[1] for p in posts if "/object/media-outputs/" in p}
        assert uploads == {"part_00.mp4", "part_01.mp4", "part_02.mp4"}
    for output in outcome.result["outputs"]:
        stored = server.object_file("media-outputs", output["path"])
        assert output["sha256"] == sha256(stored) and output["size"] == stored.stat().st_size


def test_a_new_upload_of_a_path_forgets_the_finished_one_before_its_first_byte(
        db: psycopg.Connection[Any], store: JobStore, server: StorageServer, tmp_path: Path,
        runners: list[Runner]) -> None:
    """A crash between the new upload's last byte and its journal entry must not leave the old entry
    vouching for, or resumable over, bytes that are no longer there."""
    runners.append(Runner(store, settings_for(tmp_path, server, UPLOAD_CHUNK_SIZE_MB=1,
                                              UPLOAD_RESUMABLE_THRESHOLD_MB=0)))
    first = claim(store, "test.delivery_files", {"files": files(1, 3 * MiB)})
    assert isinstance(runners[0].run(first), Completed)
    path = f"anonymous/{first.id}/part_00.mp4"
    server.delete_objects("media-outputs", [path])
    at_create: list[Any] = []
    server.on_create = lambda: at_create.append(db.execute(
        "select stored_at is not null as stored from public.media_job_uploads where path = %s", (path,)).fetchone())
    outcome = runners[0].run(take_back(db, store, first))
    assert at_create == [None], "the finished record was gone before the new upload was created"
    assert isinstance(outcome, Completed) and server.object_file("media-outputs", path).stat().st_size == 3 * MiB


def test_a_retry_with_local_storage_leaves_identical_outputs_alone(
        db: psycopg.Connection[Any], store: JobStore, tmp_path: Path, runners: list[Runner]) -> None:
    storage = LocalStorage(tmp_path / "storage")
    runners.append(Runner(store, settings_for(tmp_path, None), storage))
    first = claim(store, "test.delivery_files", {"files": files(3, 5000)})
    assert isinstance(runners[0].run(first), Completed)
    folder = tmp_path / "storage" / "media-outputs" / "anonymous" / str(first.id)
    (folder / "part_02.mp4").write_bytes(b"y" * 5002)
    inodes = {p.name: p.stat().st_ino for p in folder.iterdir()}
    assert isinstance(runners[0].run(take_back(db, store, first)), Completed)
    after = {p.name: p.stat().st_ino for p in folder.iterdir()}
    assert [name for name in sorted(after) if after[name] != inodes[name]] == ["part_02.mp4"]


def test_an_hls_job_lists_its_playlists_and_a_manifest_that_matches_the_stored_bytes(
        store: JobStore, server: StorageServer, tmp_path: Path, runners: list[Runner], sample_clip: Path) -> None:
    server.put_object("media-uploads", "anonymous/in/clip.mp4", sample_clip)
    runners.append(Runner(store, settings_for(tmp_path, server, UPLOAD_CONCURRENCY=4, VIDEO_PRESET="ultrafast")))
    job = claim(store, "video.hls", {"input": {"bucket": "media-uploads", "path": "anonymous/in/clip.mp4"},
                                     "heights": [120, 240], "segment_seconds": 1})
    outcome = runners[0].run(job)
    assert isinstance(outcome, Completed), outcome
    outputs = {o["path"].split("/", 2)[2]: o for o in outcome.result["outputs"]}
    assert list(outputs) == ["hls/master.m3u8", "hls/120p/index.m3u8", "hls/240p/index.m3u8", "hls/manifest.json"]
    manifest = json.loads(server.object_file("media-outputs", outputs["hls/manifest.json"]["path"]).read_bytes())
    assert manifest["folder"] == f"anonymous/{job.id}/hls/" and manifest["count"] == len(manifest["files"])
    for entry in manifest["files"]:
        stored = server.object_file("media-outputs", manifest["folder"] + entry["name"])
        assert (entry["size"], entry["sha256"]) == (stored.stat().st_size, sha256(stored))
    for rendition in ("120p", "240p"):
        segments = [f for f in manifest["files"] if f["name"].startswith(f"{rendition}/seg_")]
        playlist = outputs[f"hls/{rendition}/index.m3u8"]
        assert (playlist["segments"], playlist["bytes"]) == (len(segments), sum(f["size"] for f in segments))
        assert playlist["segments"] == 2


def test_a_two_hour_ladder_keeps_the_result_under_64_kib(store: JobStore, tmp_path: Path,
                                                         runners: list[Runner]) -> None:
    runners.append(Runner(store, settings_for(tmp_path, None), LocalStorage(tmp_path / "storage")))
    job = claim(store, "test.delivery_ladder", {"segments": 1800})  # 2 h of 4 s segments
    outcome = runners[0].run(job)
    assert isinstance(outcome, Completed), outcome
    assert len(json.dumps(outcome.result)) < 64 * 1024
    manifest = [o for o in outcome.result["outputs"] if o["kind"] == "hls_manifest"]
    assert manifest and manifest[0]["files"] == 1 + 3 + 3 * 1800
