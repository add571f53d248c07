"""A resumable upload's PATCHes sent ahead of their answers on one connection (HTTP/1.1 pipelining).

Sent one after another, each PATCH waits for the answer to the last, so the link idles for a round
trip at every chunk boundary: 171 round trips per GiB in 6 MiB chunks. Here the next PATCH goes
while the server still works on the one before; the server answers in order (measured on the real
server, directly and behind nginx: 204, 204). Nothing here decides what a failure means: any answer
but the expected 204, and any network error, ends the pipeline, and the caller continues one chunk
at a time from the server's offset (HEAD). That is always safe: a PATCH at an offset the server does
not hold is refused with 409 and writes nothing.
"""

from __future__ import annotations

import http.client
import os
import select
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any
from urllib.parse import urlsplit

import requests

SEND_BLOCK_BYTES = 1024 * 1024
# Requests in flight at most. A link hides its round trip once the bytes in flight cover its rate
# times the round trip: 4 chunks of 6 MiB do for 600 MB/s at 40 ms. Each is streamed from the file,
# so memory does not grow with it; a break resends at most the requests behind the failed one.
PIPELINE_DEPTH = 4


@dataclass(frozen=True)
class Answer:
    """One answer to a pipelined PATCH."""

    status: int
    offset: str | None
    body: str
    retry_after: str | None
    keep_alive: bool


class PipelineBroken(Exception):
    """The pipeline stopped, on this answer (None: a network error). `unsupported` says the server, a
    gateway or this machine's TLS set-up does not take pipelined requests (a conflict, a close
    mid-pipeline, a certificate store ssl cannot read), so pipelining should stop; `sent` whether
    any byte went."""

    def __init__(self, reason: str, answer: Answer | None = None, unsupported: bool = False,
                 sent: bool = True) -> None:
        super().__init__(reason)
        self.answer, self.unsupported, self.sent = answer, unsupported, sent


class _SharedReader:
    """The connection's one buffered reader, lent to each answer: http.client closes its file after
    reading a body, which would lose the answers already buffered behind it."""

    def __init__(self, reader: IO[bytes]) -> None:
        self.reader = reader

    def makefile(self, *_: Any, **__: Any) -> _SharedReader:
        return self

    def __getattr__(self, name: str) -> Any:
        return getattr(self.reader, name)

    def close(self) -> None:
        pass


class PatchConnection:
    """One raw HTTP/1.1 connection to the Storage host, kept open across a backend's uploads."""

    def __init__(self, base_headers: dict[str, str]) -> None:
        self.base_headers = base_headers
        self.sock: socket.socket | None = None
        self.reader: _SharedReader | None = None
        self.netloc = ""

    def close(self) -> None:
        if self.reader is not None:
            self.reader.reader.close()
        if self.sock is not None:
            self.sock.close()
        self.sock = self.reader = None

    def open(self, url: str, connect_timeout: float) -> None:
        """Connect to url's host unless the open connection goes there and the server has not closed it."""
        parts = urlsplit(url)
        if self.sock is not None and parts.netloc == self.netloc and not _readable(self.sock):
            return
        self.close()
        port = parts.port or (443 if parts.scheme == "https" else 80)
        sock = socket.create_connection((parts.hostname or "", port), timeout=connect_timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if parts.scheme == "https":
                sock = _tls_context().wrap_socket(sock, server_hostname=parts.hostname)
        except BaseException:
            sock.close()
            raise
        self.sock, self.netloc = sock, parts.netloc
        self.reader = _SharedReader(sock.makefile("rb"))

    def settimeout(self, read_timeout: float) -> None:
        """Bodies are sent, and answers awaited, under the read timeout (as `StorageAdapter` sends)."""
        assert self.sock is not None
        self.sock.settimeout(read_timeout)

    def send_patch(self, url: str, f: IO[bytes], offset: int, length: int) -> None:
        assert self.sock is not None
        parts = urlsplit(url)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        headers = {**self.base_headers, "Host": parts.netloc, "Upload-Offset": str(offset),
                   "Content-Length": str(length), "Content-Type": "application/offset+octet-stream"}
        head = f"PATCH {target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        self.sock.sendall(head.encode("latin-1"))
        sent = 0
        if isinstance(self.sock, ssl.SSLSocket):  # its sendfile() would write 8 KiB at a time
            f.seek(offset)
            while sent < length and (block := f.read(min(length - sent, SEND_BLOCK_BYTES))):
                self.sock.sendall(block)
                sent += len(block)
        else:  # straight from the page cache to the socket, under the socket's timeout
            sent = self.sock.sendfile(f, offset, length)
        if sent != length:  # the file shrank: the server would read the next request as upload bytes
            raise OSError(f"the file ended {length - sent} bytes early while sending a chunk")

    def read_answer(self) -> Answer:
        resp = http.client.HTTPResponse(self.reader, method="PATCH")  # type: ignore[arg-type]
        resp.begin()
        body = resp.read().decode("utf-8", "replace")
        return Answer(resp.status, resp.getheader("Upload-Offset"), body, resp.getheader("Retry-After"),
                      not resp.will_close)


def send_pipelined(conn: PatchConnection, url: str, f: IO[bytes], span: tuple[int, int], chunk_size: int,
                   timeouts: Callable[[], tuple[float, float]], confirmed: Callable[[int], None]) -> int:
    """PATCH every chunk of span (offset, size), PIPELINE_DEPTH requests ahead; call confirmed(offset) after
    each answer and return size. Raise PipelineBroken when the caller must take over (it HEADs and
    goes on alone); an exception from confirmed (a cancel) leaves the connection closed."""
    offset, size = span
    ahead: list[int] = []  # the offset each request in flight should leave the upload at
    try:
        conn.open(url, timeouts()[0])
    except (OSError, ValueError) as exc:  # ssl's errors are OSErrors; a bad certificate store, a ValueError
        tls = isinstance(exc, (ssl.SSLError, ValueError)) or exc.filename is not None
        raise PipelineBroken(f"cannot open a connection for pipelining: {type(exc).__name__}: {exc}",
                             unsupported=tls, sent=False) from exc
    try:
        while offset < size or ahead:
            conn.settimeout(timeouts()[1])
            while offset < size and len(ahead) < PIPELINE_DEPTH:
                length = min(chunk_size, size - offset)
                conn.send_patch(url, f, offset, length)
                offset += length
                ahead.append(offset)
            answer, expected = conn.read_answer(), ahead.pop(0)
            good = answer.status in (200, 204) and answer.offset == str(expected)
            if good:
                confirmed(expected)
            if not good or not answer.keep_alive:
                if good and not ahead and offset == size:
                    conn.close()
                    return size  # the last answer closed the connection: nothing was lost
                # A conflict or a close mid-pipeline is what a server or gateway that takes requests
                # concurrently would answer; other answers are the caller's to judge.
                raise PipelineBroken(f"answer {answer.status} with Upload-Offset {answer.offset} (expected "
                                     f"{expected})", answer, answer.status == 409 or good)
        return size
    except (OSError, http.client.HTTPException) as exc:
        conn.close()
        raise PipelineBroken(f"{type(exc).__name__}: {exc}") from exc
    except BaseException:
        conn.close()
        raise


def _readable(sock: socket.socket) -> bool:
    """True when an idle connection has something to read: the server closed it (or sent junk)."""
    try:
        return bool(select.select([sock], [], [], 0)[0])
    except (OSError, ValueError):
        return True


def _tls_context() -> ssl.SSLContext:
    """Verify as requests does: REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE if set (a file, or a folder of
    hashed certificates), else certifi's bundle."""
    where = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or requests.certs.where()
    if os.path.isdir(where):
        return ssl.create_default_context(capath=where)
    return ssl.create_default_context(cafile=where)
