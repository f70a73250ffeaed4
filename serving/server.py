"""`python -m recsys.serving.server start <model repository>`: MLServer with a request-body limit.

MLServer gives runtimes no hook on its REST app, so this entry point wraps the app it builds
with BodyLimitMiddleware (`Settings.max_body_bytes`, RECSYS_MAX_BODY_BYTES) and then runs MLServer's
own CLI unchanged. In a cluster the same limit belongs in the ingress as well.
"""
from __future__ import annotations

import mlserver.rest.server as rest_server
from mlserver.cli.main import main as mlserver_main

from recsys.core.settings import load_settings
from recsys.serving.body_limit import BodyLimitMiddleware


def _limited(create_app):
    def create(*args, **kwargs):
        limit = load_settings().max_body_bytes
        app = create_app(*args, **kwargs)
        app.add_middleware(BodyLimitMiddleware, max_bytes=limit)
        return app
    return create


def main() -> None:
    rest_server.create_app = _limited(rest_server.create_app)
    mlserver_main()


if __name__ == "__main__":
    main()
