"""A TCP proxy a test can cut: the network between a client and a real server.

While cut, every open connection is closed and new ones are accepted and closed at once
(the client sees a reset or an empty reply, as across a dropped network path). While frozen,
connections are accepted and kept open but nothing is forwarded either way (a server that
stopped answering); `restore` closes the connections held meanwhile.
"""
from __future__ import annotations

import contextlib
import socket
import threading


class TcpProxy:
    def __init__(self, target_host: str, target_port: int):
        self.target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._cut = threading.Event()
        self._frozen = threading.Event()
        self._held: list[socket.socket] = []
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True, name="tcp-proxy").start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cut(self) -> None:
        self._cut.set()
        with self._lock:
            for sock in list(self._open):
                _close(sock)
            self._open.clear()

    def freeze(self) -> None:
        self._frozen.set()

    def restore(self) -> None:
        self._cut.clear()
        if self._frozen.is_set():
            self._frozen.clear()
            with self._lock:
                held, self._held = self._held, []
                for sock in list(self._open):
                    _close(sock)
                self._open.clear()
            for sock in held:
                _close(sock)

    def close(self) -> None:
        self._closed = True
        self.cut()
        _close(self._listener)

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self._cut.is_set():
                _close(client)
                continue
            if self._frozen.is_set():
                with self._lock:
                    self._held.append(client)
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                _close(client)
                continue
            with self._lock:
                self._open.update((client, upstream))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        # OSError: the other side (or cut()) closed the connection: end this direction
        try:
            with contextlib.suppress(OSError):
                while data := source.recv(65536):
                    if self._cut.is_set() or self._frozen.is_set():
                        break
                    sink.sendall(data)
        finally:
            for sock in (source, sink):
                _close(sock)
                with self._lock:
                    self._open.discard(sock)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already disconnected
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
