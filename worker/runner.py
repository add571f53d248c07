"""Running one claimed job: download, probe, handle, verify, upload. It writes no job state.

Uploads overlap the encode: a handler's live outputs (HLS segments, stills) are stored while its ffmpeg runs,
the rest once it has exited, UPLOAD_CONCURRENCY at once (worker.delivery, worker.live_outputs).

Every way out of a job ends in an Outcome (worker.outcome) for the dispatcher to record:
completed, failed, retry with backoff, cancelled, released, or abandoned when another worker
owns the job. What follows a recorded outcome (the input's deletion, the log line, metrics,
the webhook) is `conclude`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from uuid import UUID

from handlers import get_handler
from handlers.base import Handler, HandlerResult, InputPayload, JobContext, MediaSettings, TaskContext
from utils.backoff import backoff_delay
from utils.ffmpeg import FFmpegStopped, MediaError, ProbeResult, check_limits, probe
from utils.storage import Storage, StorageError
from worker import metrics
from worker.config import Settings
from worker.control import Heartbeat, JobControl
from worker.db import ClaimedJob, JobStore
from worker.delivery import Delivery, Destination, StoragePool, manifest_artifact, manifest_document, output_entry
from worker.errors import (
    CancelRequested,
    InputRejected,
    LeaseLost,
    PermanentJobError,
    ShutdownRequested,
    StorageRejected,
    StorageUnavailable,
    TransientJobError,
)
from worker.job_checks import check_input_owner, check_storable, verify_artifacts
from worker.live_outputs import LiveOutputWatch
from worker.live_playlists import LivePlaylistPublisher
from worker.logs import log
from worker.outcome import (
    FINAL_STATES,
    Abandoned,
    Cancelled,
    Completed,
    Exhausted,
    Failed,
    Outcome,
    Released,
    Retry,
)
from worker.runtime import OUTPUT_BUCKET
from worker.uploads import JobUploadJournal, download_progress
from worker.workdir import WorkDir


class JobRunner:
    """Runs claimed jobs for one worker slot; `store` keeps only their upload journal."""

    def __init__(self, store: JobStore, storage: Storage, settings: Settings, media: MediaSettings,
                 heartbeat: Heartbeat, on_finished: Callable[[UUID], None] | None = None,
                 storage_factory: Callable[[], Storage] | None = None) -> None:
        self.store, self.storage, self.settings, self.media = store, storage, settings, media
        self.heartbeat = heartbeat
        self.on_finished = on_finished  # told of every completed, failed or cancelled job (webhooks)
        # Upload threads past the first get a backend of their own from storage_factory; without one,
        # a job's outputs go one at a time whatever UPLOAD_CONCURRENCY says.
        self.storages = StoragePool(storage, storage_factory)

    def run(self, job: ClaimedJob, control: JobControl, log_context: dict[str, Any]) -> Outcome:
        """Run a claimed job, its lease renewed meanwhile; return how it ended. Writes no job state."""
        if job.attempts > job.max_attempts:  # taken back from dead workers too often
            return Exhausted()
        log.info("job_started", priority=job.priority)
        self.heartbeat.attach(job.id, control, log_context)
        try:
            return self._attempt(job, control)
        finally:
            self.heartbeat.detach()

    def conclude(self, job: ClaimedJob, outcome: Outcome, state: str, seconds: float) -> None:
        """What follows a recorded outcome: delete_input_on_success, the log line, metrics, the webhook."""
        if isinstance(outcome, Completed) and outcome.input_to_delete and state == "completed":
            self._delete_input(*outcome.input_to_delete)
        log.info("job_finished", status=state, seconds=round(seconds, 2))
        metrics.JOBS_FINISHED.labels(job.type, state).inc()
        metrics.JOB_DURATION.labels(job.type, state).observe(seconds)
        if state in FINAL_STATES and self.on_finished is not None:
            self.on_finished(job.id)

    def _delete_input(self, bucket: str, path: str) -> None:
        """delete_input_on_success: the outputs are stored, so the upload may go. Failure only logs."""
        try:
            self.storage.delete(bucket, [path])
            log.info("input_deleted", bucket=bucket, path=path)
        except Exception as exc:  # noqa: BLE001 - the job is completed; a leftover upload is no reason to say otherwise
            log.warning("input_not_deleted", bucket=bucket, path=path, error=str(exc))

    def _attempt(self, job: ClaimedJob, control: JobControl) -> Outcome:
        """Process the job; turn whatever ended it into its outcome."""
        try:
            result, input_to_delete = self._process(job, control)
            control.check()
            return Completed(result, input_to_delete)
        except CancelRequested:
            return Cancelled()
        except ShutdownRequested:
            return Released()
        except LeaseLost as exc:
            metrics.LEASES_LOST.inc()
            return Abandoned(str(exc))
        except PermanentJobError as exc:
            log.warning("job_failed_permanently", error=str(exc))
            return Failed(str(exc))
        except Exception as exc:  # noqa: BLE001 - anything else is retried, never lost
            if isinstance(exc, TransientJobError):
                message = str(exc)
                log.warning("job_failed_transiently", error=message)
            else:
                message = f"internal error: {exc!r}"
                log.exception("job_crashed")
            return Retry(message, self.retry_delay(job))

    def retry_delay(self, job: ClaimedJob) -> float:
        """The backoff before this job's next attempt."""
        return backoff_delay(job.attempts, self.settings.worker_retry_base_seconds,
                             self.settings.worker_retry_max_seconds)

    def _process(self, job: ClaimedJob, control: JobControl) -> tuple[dict[str, Any], tuple[str, str] | None]:
        """Run the handler and store its outputs; return the result and the input to delete, if asked."""
        handler = get_handler(job.type)
        payload = handler.parse_payload(job.payload)
        input_to_delete = None
        if isinstance(payload, InputPayload) and payload.delete_input_on_success:
            input_to_delete = (payload.input.bucket, payload.input.path)
        with WorkDir(self.settings.worker_temp_dir, job) as work, translate_failures(control, work), \
                self._delivery(job, control) as delivery:
            ctx, metadata = self._context(job, payload, work, control, delivery)
            control.set_stage("processing", 5)
            output = self._run_handler(handler, payload, ctx, work.path, delivery, control)
            check_storable(job.type, [metadata, output.metadata, *(a.meta for a in output.artifacts)])
            control.set_stage("verifying", 85)
            verify_artifacts(self.media.ffprobe_path, output.artifacts)  # live outputs go on uploading meanwhile
            control.set_stage("uploading", 85)
            outputs = self._upload(output, delivery)
        return {"outputs": outputs, "metadata": {**metadata, **output.metadata}}, input_to_delete

    def _delivery(self, job: ClaimedJob, control: JobControl) -> Delivery:
        """The job's uploads, UPLOAD_CONCURRENCY at once; leaving its `with` joins every upload thread."""
        dest = Destination(OUTPUT_BUCKET, f"{job.owner_folder}/{job.id}", retry=job.attempts > 1)
        storages = self.storages.take(self.settings.upload_concurrency)
        return Delivery(dest, control, JobUploadJournal(self.store, job.id), storages)

    def _context(self, job: ClaimedJob, payload: Any, work: WorkDir, control: JobControl,
                 delivery: Delivery) -> tuple[JobContext | TaskContext, dict[str, Any]]:
        """What the handler gets, and the input's probe metadata (for a payload with an input)."""
        report = lambda fraction: control.set_progress(5 + 80 * fraction)  # noqa: E731
        # A failed upload fails the job, so its ffmpeg need not run on.
        should_stop = lambda: control.should_stop() or delivery.failed  # noqa: E731
        if not isinstance(payload, InputPayload):
            return TaskContext(work.make, self.media, report, should_stop), {}
        check_input_owner(job, payload)
        work_dir = work.make()
        input_path, probed = self._fetch_input(payload, work_dir, control)
        return JobContext(input_path, probed, work_dir, self.media, report, should_stop), probed.to_metadata()

    def _run_handler(self, handler: Handler, payload: Any, ctx: JobContext | TaskContext, work_dir: Path,
                     delivery: Delivery, control: JobControl) -> HandlerResult:
        """Run the handler, storing its live outputs (and live playlists, for progressive playback) while it runs;
        an upload that failed is what is raised."""
        started = time.monotonic()
        spec = handler.live_playlists(payload) if handler.live_playlists else None
        # The watch is left first: its last look queues the final segments before the publisher waits for its
        # snapshots in flight.
        with LivePlaylistPublisher(work_dir, spec, delivery, lambda: control.set_stage("playable")) as live, \
                LiveOutputWatch(work_dir, handler.live_outputs, delivery.submit):
            try:
                output = handler.run(payload, ctx)
            except FFmpegStopped:
                delivery.raise_failure()
                raise
        if isinstance(ctx, JobContext) and ctx.probe.duration > 0:
            metrics.FFMPEG_SPEED.observe(ctx.probe.duration / max(time.monotonic() - started, 1e-3))
        if live.playable_at is not None:
            return HandlerResult(output.artifacts, {**output.metadata, "playable_at": live.playable_at}, output.manifest)
        return output

    def _fetch_input(self, payload: InputPayload, work_dir: Path, control: JobControl) -> tuple[Path, ProbeResult]:
        """Download the input into the work directory, then probe and gate it."""
        input_path = work_dir / "input"
        control.set_stage("downloading", 0)
        size = self.storage.download_file(payload.input.bucket, payload.input.path, input_path,
                                          self.settings.input_max_size_bytes, download_progress(control))
        metrics.DOWNLOAD_BYTES.inc(size)
        control.set_stage("probing", 5)
        probed = probe(self.media.ffprobe_path, input_path)
        check_limits(probed, self.media.limits)
        return input_path, probed

    def _upload(self, output: HandlerResult, delivery: Delivery) -> list[dict[str, Any]]:
        """Store the artifacts (those stored during the run count if unchanged), then the manifest if the handler
        declared one; return result.outputs: the listed artifacts in their order, the manifest last."""
        artifacts = output.artifacts
        stored = delivery.store(artifacts)
        if output.manifest is not None:
            document = manifest_document(output.manifest, delivery.dest, artifacts, stored)
            artifacts = [*artifacts, manifest_artifact(output.manifest, document)]
            stored += delivery.store(artifacts[-1:])
        return [{**output_entry(a, s), **self._signed_url(s.bucket, s.path)}
                for a, s in zip(artifacts, stored, strict=True) if a.listed]

    def _signed_url(self, bucket: str, path: str) -> dict[str, str]:
        """{"signed_url": ...} when OUTPUT_SIGNED_URL_SECONDS > 0, else nothing."""
        seconds = self.settings.output_signed_url_seconds
        return {"signed_url": self.storage.signed_url(bucket, path, seconds)} if seconds > 0 else {}


@contextmanager
def translate_failures(control: JobControl, work: WorkDir) -> Iterator[None]:
    """Map utils' exceptions onto the job error tree, once; messages name files, not our paths."""
    try:
        yield
    except FFmpegStopped:
        control.check()
        raise
    except MediaError as exc:
        message = f"{exc}\nffmpeg said:\n{exc.stderr_tail}" if exc.stderr_tail else str(exc)
        message = message.replace(f"file:{work.path}/", "").replace(f"{work.path}/", "")
        if exc.retryable:
            raise TransientJobError(message) from exc
        raise InputRejected(message) from exc
    except StorageError as exc:
        if exc.permanent:
            raise StorageRejected(str(exc)) from exc
        raise StorageUnavailable(str(exc)) from exc


__all__ = ["JobRunner"]
