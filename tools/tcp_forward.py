"""A TCP forwarder: connections to (listen host, port) are relayed to a target address.
`make kube-play` lets its pods reach the host's PostgreSQL, which listens on loopback
only, through the podman network's gateway address (it listens on every address: the
network's bridge exists only once a pod joins it) and refuses clients from elsewhere."""
from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress


@contextmanager
def tcp_forward(listen_host: str, listen_port: int, target_host: str, target_port: int,
                clients: str = "127.0.0.0/8") -> Iterator[str]:
    """Relay (listen_host, listen_port) -> (target_host, target_port) for clients in the
    network `clients` until the block ends; yields `listen_host:listen_port`."""
    allowed = ipaddress.ip_network(clients)
    server = socket.create_server((listen_host, listen_port))
    server.settimeout(0.2)
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                client, (peer, *_) = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if ipaddress.ip_address(peer) not in allowed:
                client.close()
                continue
            try:
                upstream = socket.create_connection((target_host, target_port), timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pipe, args=(source, sink), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"{listen_host}:{listen_port}"
    finally:
        stop.set()
        thread.join(timeout=2)
        server.close()


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    """Copy `source` to `sink` until either end closes or resets (normal ends of a
    forwarded connection, not errors), then close both."""
    with suppress(OSError):
        while chunk := source.recv(65536):
            sink.sendall(chunk)
    for end in (source, sink):
        with suppress(OSError):  # the other pipe may have shut it already
            end.shutdown(socket.SHUT_RDWR)
        end.close()
