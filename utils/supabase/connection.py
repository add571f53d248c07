"""HTTP connections for Storage requests: request bodies are sent under the read timeout.

urllib3 puts the connect timeout on the socket for the whole of sending a request and switches
to the read timeout only to wait for the answer, so a server that reads a 6 MiB chunk slowly
failed the send after the connect timeout (10 s at most) instead of the transfer's own read
timeout. These connections still connect under the connect timeout, then send under the read one.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

from requests import PreparedRequest, Response
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

# The read timeout of the request being sent on this thread; requests' adapter sends synchronously.
_send_timeout: ContextVar[float | None] = ContextVar("storage_send_timeout", default=None)


class _SendUnderReadTimeout:
    """Mixed into urllib3's connections: once connected, the socket waits up to the read timeout."""

    sock: Any
    timeout: Any

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]  # under the connect timeout
        if (send := _send_timeout.get()) is not None and self.sock is not None:
            self.sock.settimeout(send)

    def request(self, *args: Any, **kwargs: Any) -> None:
        if (send := _send_timeout.get()) is not None and self.sock is not None:
            self.timeout = send  # a reused connection: urllib3 applies self.timeout to the socket for the send
        super().request(*args, **kwargs)  # type: ignore[misc]


class StorageHTTPConnection(_SendUnderReadTimeout, HTTPConnection):
    pass


class StorageHTTPSConnection(_SendUnderReadTimeout, HTTPSConnection):
    pass


class StorageHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = StorageHTTPConnection


class StorageHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = StorageHTTPSConnection


class StorageAdapter(HTTPAdapter):
    """Sends bodies under the read timeout, in 1 MiB writes instead of urllib3's 16 KiB (a large saving in calls)."""

    SEND_BLOCK_BYTES = 1024 * 1024

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, blocksize=self.SEND_BLOCK_BYTES, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": StorageHTTPConnectionPool,
                                                   "https": StorageHTTPSConnectionPool}

    def send(self, request: PreparedRequest, stream: bool = False, timeout: Any = None, verify: Any = True,
             cert: Any = None, proxies: Any = None) -> Response:
        read = timeout[1] if isinstance(timeout, tuple) else timeout
        token = _send_timeout.set(read)
        try:
            return super().send(request, stream=stream, timeout=timeout, verify=verify, cert=cert, proxies=proxies)
        finally:
            _send_timeout.reset(token)
