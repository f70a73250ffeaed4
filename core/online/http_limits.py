"""Limits on a request's head (request line and headers) for the project's HTTP servers.

uvicorn with httptools (what it picks when httptools is installed, as here) keeps every
header byte a client sends until the head ends, with no cap and no deadline: eight
connections sending 16 MB of an unfinished header grow a server by 128 MiB, before any
token is checked. uvicorn has no setting for either (`h11_max_incomplete_event_size`
applies only to its slower h11 parser; `timeout_keep_alive` runs only between requests;
`limit_concurrency` answers 503 to every client once attackers hold the connections).
`head_limited_protocol` is uvicorn's httptools protocol with both:

- a head larger than `max_head_bytes` is answered 431 and the connection closed (the
  server holds at most the cap plus two reads, 256 KiB each, of it);
- a head not complete within `head_timeout_seconds` of its first byte (or of the
  connection's opening) is answered 408 (or closed silently when nothing came): a client
  sending a byte now and then cannot hold a connection.

Used by serving (MLServer's REST and metrics servers), the collector, the stream workers'
HTTP and the Evidently UI. Checked against uvicorn 0.34 (callbacks `on_headers_complete`,
`on_message_complete` of its httptools protocol).
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

DEFAULT_MAX_HEAD_BYTES = 65_536
DEFAULT_HEAD_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class HeadLimits:
    max_head_bytes: int = DEFAULT_MAX_HEAD_BYTES
    head_timeout_seconds: float = DEFAULT_HEAD_TIMEOUT_SECONDS


class HeadLimitedHttpTools(HttpToolsProtocol):
    """uvicorn's httptools protocol with a size cap and a deadline on each request head."""

    limits = HeadLimits()

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._head_bytes = 0
        self._in_head = True
        self._head_timer: asyncio.TimerHandle | None = self.loop.call_later(
            self.limits.head_timeout_seconds, self._head_too_slow)

    def connection_lost(self, exc) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._boundary = False
        super().data_received(data)
        if not self._in_head or self.transport.is_closing():
            return
        if not self._boundary:  # the whole read is head: a read that ended a head or a
            self._head_bytes += len(data)  # message is not counted (at most one read)
            if self._head_bytes > self.limits.max_head_bytes:
                self._refuse(431, f"request head over {self.limits.max_head_bytes} bytes")
                return
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.limits.head_timeout_seconds,
                                                    self._head_too_slow)

    def on_headers_complete(self) -> None:
        self._in_head, self._head_bytes, self._boundary = False, 0, True
        self._cancel_head_timer()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._in_head, self._boundary = True, True  # what follows is the next request's head
        super().on_message_complete()

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if not self._in_head or self.transport.is_closing():
            return
        if self._head_bytes == 0:
            self.transport.close()  # nothing came: no answer owed
            return
        self._refuse(408, f"request head not complete within "
                          f"{self.limits.head_timeout_seconds:g} s")

    def _cancel_head_timer(self) -> None:
        timer = getattr(self, "_head_timer", None)
        if timer is not None:
            timer.cancel()
            self._head_timer = None

    def _refuse(self, status: int, message: str) -> None:
        self._cancel_head_timer()
        body = message.encode("ascii")
        self.transport.write(b"".join([
            STATUS_LINE[status], b"content-type: text/plain; charset=utf-8\r\n",
            b"content-length: ", str(len(body)).encode("ascii"), b"\r\n",
            b"connection: close\r\n\r\n", body]))
        self.transport.close()


def head_limited_protocol(limits: HeadLimits) -> type[HeadLimitedHttpTools]:
    """The protocol class to give uvicorn as `http=` (`uvicorn.Config(..., http=...)`)."""
    return type("HeadLimitedHttpTools", (HeadLimitedHttpTools,), {"limits": limits})


def uvicorn_head_limits(settings) -> dict:
    """`uvicorn.Config` keyword arguments applying the settings' head limits."""
    return {"http": head_limited_protocol(HeadLimits(settings.http_max_header_bytes,
                                                     settings.http_header_timeout_seconds))}
