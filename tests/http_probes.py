"""Raw-socket clients that misbehave the way header floods do, for the servers' head limits
(`recsys.core.online.http_limits`)."""
from __future__ import annotations

import select
import socket
from dataclasses import dataclass

HEAD = b"GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Flood: "


@dataclass
class Refusal:
    sent: int
    """Bytes of the head sent before the server answered or closed (None: never)."""
    answer: bytes


def endless_header(port: int, path: str = "/", step: int = 16_384,
                   give_up_after: int = 4 * 1024 * 1024) -> Refusal | None:
    """Send one header line that never ends, `step` bytes at a time, until the server
    answers or closes; None when it took `give_up_after` bytes without either."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sent = 0
        sock.sendall(HEAD % path.encode())
        while sent < give_up_after:
            try:
                sock.sendall(b"a" * step)
            except OSError:  # reset: the server closed while we were sending
                return Refusal(sent, b"")
            sent += step
            readable, _, _ = select.select([sock], [], [], 0.01)
            if readable:
                return Refusal(sent, _read_all(sock))
        return None


def trickled_header(port: int, path: str = "/", pause_seconds: float = 0.5,
                    give_up_after: int = 40) -> Refusal | None:
    """Send a head one byte every `pause_seconds` (a slow client holding the connection);
    None when the server took `give_up_after` bytes without answering or closing."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(HEAD % path.encode())
        for sent in range(give_up_after):
            try:
                sock.sendall(b"a")
            except OSError:
                return Refusal(sent, b"")
            readable, _, _ = select.select([sock], [], [], pause_seconds)
            if readable:
                return Refusal(sent + 1, _read_all(sock))
        return None


def _read_all(sock: socket.socket) -> bytes:
    chunks = []
    try:
        while chunk := sock.recv(65_536):
            chunks.append(chunk)
    except OSError:
        pass
    return b"".join(chunks)
