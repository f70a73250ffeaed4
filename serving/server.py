"""`python -m recsys.serving.server start <model repository>`: MLServer with a request-body limit.

MLServer gives runtimes no hook on its REST app, so this entry point wraps the app it builds
with BodyLimitMiddleware (RECSYS_MAX_BODY_BYTES, default 256 KiB) and then runs MLServer's
own CLI unchanged. In a cluster the same limit belongs in the ingress as well.
"""
from __future__ import annotations

import os

import mlserver.rest.server as rest_server
from mlserver.cli.main import main as mlserver_main

from recsys.serving.body_limit import DEFAULT_MAX_BODY_BYTES, BodyLimitMiddleware


def _limited(create_app):
    def create(*args, **kwargs):
        limit = int(os.environ.get("RECSYS_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES))
        app = create_app(*args, **kwargs)
        app.add_middleware(BodyLimitMiddleware, max_bytes=limit)
        return app
    return create


def main() -> None:
    rest_server.create_app = _limited(rest_server.create_app)
    mlserver_main()


if __name__ == "__main__":
    main()
