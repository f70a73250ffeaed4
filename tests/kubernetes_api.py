"""A Kubernetes API answered in the test: a real HTTP server on a free port that the
`kubernetes` client talks to. Each test module gives the handler of its resources (what it
stores, validates and answers); this holds the serving, the client and the cleanup."""
from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar


class ServedApi:
    """Base of a test's API: `serve(Handler)` in `__init__`, then `client` and `close()`."""

    server: ThreadingHTTPServer

    def serve(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def client(self) -> Any:
        from kubernetes import client

        configuration = client.Configuration()
        configuration.host = f"http://127.0.0.1:{self.server.server_port}"
        return client.ApiClient(configuration)

    def close(self) -> None:
        self.server.shutdown()


Api = TypeVar("Api", bound=ServedApi)


@contextmanager
def served_apis(api_class: Callable[..., Api]) -> Iterator[Callable[..., Api]]:
    """`make(*args)` builds an API server of `api_class`; every one made is closed after."""
    made: list[Api] = []

    def make(*args: Any, **kwargs: Any) -> Api:
        made.append(api_class(*args, **kwargs))
        return made[-1]

    try:
        yield make
    finally:
        for api in made:
            api.close()
