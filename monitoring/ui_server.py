"""`recsys monitor ui`: Evidently's UI over the project's workspace, behind a guard.

Evidently 0.7's UI (`evidently ui`) takes writes from anyone who reaches it: a `text/plain`
POST from any web page the engineer has open creates a project, DELETE removes one, any
`Host` is served (so a page on another site can reach it through DNS rebinding), and its
report download renders the report with the data unescaped (a `</script>` in an event
field runs in the engineer's browser; `html_report.py` has the details). `UiGuard` sits in
front of Evidently's own app:

- `Host` must be one of `127.0.0.1`, `localhost`, `::1` or `RECSYS_MONITOR_UI_HOSTS`
  (403 otherwise): a rebound name is not in the list;
- writes (any method but GET, HEAD, OPTIONS; except the dashboard's read-only
  `data_series_batch` POST) need the UI secret in the `evidently-secret` header (what
  Evidently's `RemoteWorkspace(url, secret=...)` sends; 401 without it), and a browser's
  `Origin`, when sent, must be the UI's own (403 otherwise);
- the report download (`.../download`, HTML) is rendered by `html_report.report_html`
  from the same stored snapshot: the data escaped, nothing the HTML parser can act on.

The secret comes from `RECSYS_MONITOR_UI_SECRET[_FILE]` or, on the embedded default, the
generated `<state dir>/secrets/monitor_ui_secret`. The project's own writes do not go
through the UI (the monitor writes the workspace folder directly).
"""
from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlsplit

from recsys.core.online.bearer_keys import BearerKeys, surface_keys
from recsys.core.settings import Settings

UI_SECRET_FILE = "monitor_ui_secret"
SECRET_HEADER = b"evidently-secret"
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
READ_METHODS = {"GET", "HEAD", "OPTIONS"}
_READ_ONLY_POSTS = re.compile(r"^/api/v2/snapshots/[^/]+/data_series_batch$")
_DOWNLOAD = re.compile(r"^/api/projects/[^/]+/[^/]+/download$")


def ui_secret_keys(settings: Settings) -> BearerKeys:
    return surface_keys(settings.monitor_ui_secret, settings.monitor_ui_secret_file,
                        settings.state_dir, UI_SECRET_FILE,
                        "the Evidently UI's secrets (RECSYS_MONITOR_UI_SECRET or "
                        "RECSYS_MONITOR_UI_SECRET_FILE)")


def allowed_hosts(settings: Settings) -> frozenset[str]:
    extra = (h.strip().lower() for h in (settings.monitor_ui_hosts or "").split(","))
    return frozenset((*LOCAL_HOSTS, *(h for h in extra if h)))


def host_name(value: str) -> str:
    """The host of a `Host` header or an origin's netloc, without the port, lower case."""
    try:
        return (urlsplit(f"//{value}").hostname or "").lower()
    except ValueError:
        return ""


class UiGuard:
    """ASGI: host allow-list, secret and same-origin writes, escaped report downloads."""

    def __init__(self, app, secrets: BearerKeys, hosts: frozenset[str], port: int,
                 workspace: str):
        self.app, self.secrets, self.hosts, self.port = app, secrets, hosts, port
        self.workspace = workspace

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        host = headers.get(b"host", b"").decode("latin-1")
        if host_name(host) not in self.hosts:
            return await _answer(send, 403, f"host {host!r} is not one this UI answers as "
                                            "(RECSYS_MONITOR_UI_HOSTS)")
        method, path = scope["method"], scope["path"]
        if method not in READ_METHODS and not _READ_ONLY_POSTS.match(path):
            origin = headers.get(b"origin")
            if origin is not None and not self._own_origin(origin.decode("latin-1")):
                return await _answer(send, 403, "writes from another site's page are refused")
            secret = headers.get(SECRET_HEADER, b"").decode("latin-1")
            if self.secrets.matching(f"Bearer {secret}") is None:
                return await _answer(send, 401, "writes need the UI secret: header "
                                                "evidently-secret (RECSYS_MONITOR_UI_SECRET)")
        if method == "GET" and _DOWNLOAD.match(path):
            return await self._escaped_download(scope, receive, send)
        return await self.app(scope, receive, send)

    def _own_origin(self, origin: str) -> bool:
        try:
            parts = urlsplit(origin)
            return (parts.scheme in ("http", "https") and parts.port == self.port
                    and (parts.hostname or "").lower() in self.hosts)
        except ValueError:
            return False

    async def _escaped_download(self, scope, receive, send):
        """The report page of the snapshot, rendered by `html_report.report_html`."""
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        if query.get("report_format", "html") != "html":
            return await self.app(scope, receive, send)
        from starlette.concurrency import run_in_threadpool

        project_id, snapshot_id = scope["path"].split("/")[3:5]
        page = await run_in_threadpool(_report_page, self.workspace, project_id, snapshot_id)
        if page is None:
            return await _answer(send, 404, "no such report")
        return await _send(send, 200, [(b"content-type", b"text/html; charset=utf-8"),
                                       (b"content-disposition",
                                        f"attachment;filename={snapshot_id}.html".encode())],
                           page)


def _report_page(workspace: str, project_id: str, snapshot_id: str) -> bytes | None:
    from evidently.core.report import Snapshot
    from evidently.ui.workspace import Workspace

    from recsys.monitoring.html_report import report_html

    try:
        stored = Workspace(workspace).get_run(project_id, snapshot_id)
    except (ValueError, FileNotFoundError):  # not ids, or not in this workspace
        return None
    if stored is None:
        return None
    return report_html(Snapshot.load_dict(stored.dict())).encode("utf-8")


async def _answer(send, status: int, message: str) -> None:
    import json

    await _send(send, status, [(b"content-type", b"application/json")],
                json.dumps({"error": message}).encode())


async def _send(send, status: int, headers, body: bytes) -> None:
    kept = [(k, v) for k, v in headers if k.lower() != b"content-length"]
    await send({"type": "http.response.start", "status": status,
                "headers": [*kept, (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def serve_ui(settings: Settings, workspace: str, port: int, host: str = "127.0.0.1") -> None:
    """Run Evidently's UI app over `workspace` behind `UiGuard` (blocks)."""
    import uvicorn
    from evidently.ui.service.app import create_app, get_config

    from recsys.core.online.http_limits import uvicorn_head_limits
    from recsys.monitoring.html_report import check_evidently_version

    check_evidently_version()
    app = create_app(get_config(host=host, port=port, workspace=workspace))
    guarded = UiGuard(app, ui_secret_keys(settings), allowed_hosts(settings), port, workspace)
    uvicorn.run(guarded, host=host, port=port, log_level="warning",
                **uvicorn_head_limits(settings))
