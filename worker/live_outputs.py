"""Finding a handler's live outputs while its ffmpeg runs, so each is uploaded as soon as ffmpeg has finished it.

A watcher thread lists the work directory every POLL_SECONDS and hands each new file matching a declared pattern
(handlers.base.LiveOutput) to the job's Delivery. It looks once more when the handler has returned, so the last
segments, which ffmpeg names as it exits, upload while the outputs are verified. ffmpeg gives such a file its name
only once it is complete (a segment killed mid-write keeps its .tmp name), so whatever matches may be stored at
once. Each path is handed over once: a file written again later (a run done again on the CPU) is caught when the
handler lists it.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable
from pathlib import Path

from handlers.base import LiveOutput
from worker.delivery import file_identity
from worker.logs import log

# Segments last seconds, so a quarter of one is soon enough; each look lists a few folders.
POLL_SECONDS = 0.25

Submit = Callable[[str, Path, str, tuple[int, int, int]], None]


class LiveOutputWatch:
    """While in its `with`, hands every finished live output under `root` to `submit(name, path, type, identity)`."""

    def __init__(self, root: Path, outputs: tuple[LiveOutput, ...], submit: Submit,
                 poll_seconds: float = POLL_SECONDS) -> None:
        self.root, self.outputs, self.submit, self.poll_seconds = root, outputs, submit, poll_seconds
        self._seen: set[Path] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> LiveOutputWatch:
        if self.outputs:
            self._thread = threading.Thread(target=contextvars.copy_context().run, args=(self._watch,),
                                            name="live-outputs", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            if exc_type is None:  # a failed run's files are not wanted
                self._look()

    def scan(self) -> None:
        """Hand over every matching file not handed over yet, in name order (segments in playing order)."""
        for output in self.outputs:
            for path in sorted(self.root.glob(output.pattern)):
                if path in self._seen:
                    continue
                try:
                    identity = file_identity(path)
                except FileNotFoundError:  # renamed away between the listing and now; the next look finds it
                    continue
                self._seen.add(path)
                self.submit(path.relative_to(self.root).as_posix(), path, output.content_type, identity)

    def _watch(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            self._look()

    def _look(self) -> None:
        # A failing look must not end the watch: what it missed is uploaded once the handler lists it.
        try:
            self.scan()
        except OSError as exc:
            log.warning("live_outputs_unreadable", error=str(exc))
