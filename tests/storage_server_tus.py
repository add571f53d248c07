"""TUS routes of tests/storage_server.py: create, HEAD and PATCH, with the real server's lock drain.

After a PATCH whose body broke off (the client's connection dropped, or a fault cut it), the
upload stays locked for `StorageServer.lock_drain_s` (3 s, as measured on the real server): a
HEAD or PATCH on it answers only then.
"""

from __future__ import annotations

import select
import shutil
import time
from typing import Any

from tests.storage_bodies import parse_metadata
from tests.storage_server import PREFIX, StorageServer, Upload, drop, new_upload_id


class TusRoutes:
    """Mixed into StorageHandler, whose plumbing (answer, tus_fail, drain, read_body) these use."""

    server_state: StorageServer
    headers: Any
    connection: Any
    close_connection: bool
    answer: Any
    tus_fail: Any
    drain: Any
    read_body: Any
    sent_before_answer = False

    def post_upload_resumable(self, bucket: str, path: str) -> None:
        state = self.server_state
        self.drain()
        if state.faults.no_tus:
            return self.answer(404, b"Route POST:/upload/resumable not found", "text/plain")
        meta = parse_metadata(self.headers.get("Upload-Metadata", ""))
        length = int(self.headers["Upload-Length"])
        refusal = state.refusal(meta["bucketName"], length, meta["contentType"])
        texts = {413: "Maximum size exceeded", 415: f"mime type {meta['contentType']} is not supported",
                 404: "Bucket not found"}
        if refusal:
            return self.tus_fail(refusal, texts[refusal])
        if state.on_create is not None:
            state.on_create()
        upload_id = new_upload_id()
        file = state.root / "uploads" / upload_id
        file.parent.mkdir(exist_ok=True)
        file.touch()
        state.uploads[upload_id] = Upload(meta["bucketName"], meta["objectName"], length, meta["contentType"], file)
        location = f"{state.scheme}://{self.headers['Host']}{PREFIX}/upload/resumable/{upload_id}"
        return self.answer(201, headers={"Location": location, "Tus-Resumable": "1.0.0"})

    def known_upload(self, upload_id: str) -> Upload | None:
        if self.server_state.take("forget_uploads"):
            self.server_state.uploads.pop(upload_id, None)
        upload = self.server_state.uploads.get(upload_id)
        if upload is None:
            self.drain()
            self.tus_fail(404, "Upload not found")
        else:
            self.server_state.stop_event.wait(max(0.0, upload.drained_at - time.monotonic()))
        return upload

    def head_upload_resumable(self, upload_id: str, _: str) -> None:
        upload = self.known_upload(upload_id)
        if upload:
            self.answer(200, headers={"Upload-Offset": str(upload.offset), "Upload-Length": str(upload.length),
                                      "Tus-Resumable": "1.0.0", "Cache-Control": "no-store"})

    def patch_upload_resumable(self, upload_id: str, _: str) -> None:
        upload = self.known_upload(upload_id)
        if upload is None:
            return None
        if self.server_state.faults.refuse_pipelined and self.sent_before_answer:
            self.drain()
            return self.tus_fail(409, "File is locked")
        if not upload.lock.acquire(blocking=False):
            self.drain()
            return self.tus_fail(409, "File is locked")
        try:
            stall = self.patch_locked(upload_id, upload)
        finally:
            upload.lock.release()
        if stall:  # the bytes are kept; the answer never comes
            self.server_state.stop_event.wait(5)
            drop(self.connection)
            self.close_connection = True

    def patch_locked(self, upload_id: str, upload: Upload) -> bool:
        """Apply one PATCH; True when the answer should stall."""
        state = self.server_state
        offset, length = int(self.headers["Upload-Offset"]), int(self.headers.get("Content-Length", "0"))
        target = state.object_file(upload.bucket, upload.path)
        if offset != upload.offset:
            self.drain()
            self.tus_fail(409, "Upload-Offset conflict")
            return False
        if offset + length > upload.length:
            self.drain()
            self.tus_fail(413, "upload's size exceeded")
            return False
        if target.exists() and self.headers.get("x-upsert") != "true":
            self.drain()
            self.tus_fail(409, "The resource already exists")
            return False
        if state.faults.patch_delay_seconds:
            state.stop_event.wait(state.faults.patch_delay_seconds)
        if not self.append_body(upload):
            upload.drained_at = time.monotonic() + state.lock_drain_s  # the dead request still holds the lock
            return False
        if short := state.take("keep_short"):  # legal TUS: the answer's offset says what was kept
            with open(upload.file, "r+b") as kept:
                kept.truncate(upload.file.stat().st_size - short)
        if state.take("stall_patches"):
            return True
        headers = {"Upload-Offset": str(upload.offset), "Tus-Resumable": "1.0.0"}
        if upload.offset == upload.length:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(upload.file, target)
            upload.completed = True
            state.cache_control.upload_completed(upload_id, upload.bucket, upload.path)
            headers["Tus-Complete"] = "1"
        self.watch_pipelining()
        self.answer(204, headers=headers)
        return False

    def watch_pipelining(self) -> None:
        """Note whether the client sent its next request before this answer (HTTP/1.1 pipelining)."""
        state = self.server_state
        if state.faults.watch_pipelining or state.faults.refuse_pipelined:
            self.sent_before_answer = bool(select.select([self.connection], [], [], 0.5)[0])
            state.pipelined.append(self.sent_before_answer)

    def append_body(self, upload: Upload) -> bool:
        """Append the PATCH body to the upload's file; False if it broke off (the bytes that came are kept)."""
        with open(upload.file, "ab") as out:
            try:
                return bool(self.read_body(out, self.server_state.take("drop_patch_after")))
            except OSError:  # the client's connection was reset
                return False
