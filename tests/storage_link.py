"""The network between the worker and tests/storage_server.py: a bandwidth cap and a round trip.

`Link` paces bytes through one shared budget per direction (what the server reads, what it writes),
as a real link is shared by every connection over it. The handler's socket files are wrapped in
`PacedReader` / `PacedWriter`, which ask the link before passing each block on.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import Any


class Link:
    """One direction of the modelled link: `pace(n)` returns once n bytes would have crossed it."""

    def __init__(self, rate: Callable[[], float | None], stop: threading.Event) -> None:
        self.rate, self.stop = rate, stop
        self.free_at = 0.0  # when the link finishes carrying what it was already given
        self.lock = threading.Lock()

    def pace(self, n: int) -> None:
        rate = self.rate()
        if not rate or n <= 0:
            return
        with self.lock:
            now = time.monotonic()
            self.free_at = max(now, self.free_at) + n / rate
            wait = self.free_at - now
        self.stop.wait(wait)


class PacedReader:
    """A request's input file whose bodies come no faster than the link allows (header lines are not paced)."""

    def __init__(self, raw: Any, link: Link) -> None:
        self.raw, self.link = raw, link

    def read(self, size: int = -1) -> bytes:
        data: bytes = self.raw.read(size)
        self.link.pace(len(data))
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self.raw, name)


class PacedWriter:
    """A request's output file whose writes go no faster than the link allows."""

    def __init__(self, raw: Any, link: Link) -> None:
        self.raw, self.link = raw, link

    def write(self, data: bytes) -> int:
        self.link.pace(len(data))
        written: int = self.raw.write(data)
        return written

    def __getattr__(self, name: str) -> Any:
        return getattr(self.raw, name)


class DelayedWriter:
    """A connection's output that reaches the client `delay()` seconds after the handler wrote it,
    while the handler goes on reading: a link's round trip. A client that waits for each answer
    before its next request pays it every time; one that pipelines its requests does not."""

    def __init__(self, raw: Any, delay: Callable[[], float], stop: threading.Event) -> None:
        self.raw, self.delay, self.stop = raw, delay, stop
        self.queue: queue.Queue[tuple[float, bytes] | None] = queue.Queue()
        self.thread = threading.Thread(target=self._deliver, daemon=True, name="delayed-writer")
        self.thread.start()

    def write(self, data: bytes) -> int:
        self.queue.put((time.monotonic() + self.delay(), bytes(data)))
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        """Deliver what is on its way, then close."""
        self.queue.put(None)
        self.thread.join()
        self.raw.close()

    def _deliver(self) -> None:
        while (item := self.queue.get()) is not None:
            due, data = item
            self.stop.wait(max(0.0, due - time.monotonic()))
            try:
                self.raw.write(data)
                self.raw.flush()
            except (OSError, ValueError):  # the connection was cut: drop what is left
                continue

    def __getattr__(self, name: str) -> Any:
        return getattr(self.raw, name)
