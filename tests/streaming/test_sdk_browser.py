"""The browser SDK (sdk/js/recsys.js) in a real headless Chromium, against the collector's
HTTP server and the lake sink: a shop page views a product, a real mouse click on a
recommendation navigates away (the click leaves by `navigator.sendBeacon` on page hide), the
next page views the clicked product through a bus that stores its batch but loses the answer
(503 "stored unknown": the SDK retries with the same event id) and, after 30 idle minutes,
starts a new session. Every event lands in the lake once, with the context the SDK filled in.

Chromium is driven over the DevTools protocol (a websocket, Chromium's own
`--remote-debugging-port`) so that the click is a real input event and the browser stays open
until the collector has every event; Debian's chromium package, as the monitoring tests use.
"""
import json
import shutil
import subprocess
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pandas as pd
import pytest
import uvicorn
from websockets.sync.client import connect

from recsys.core.data.event_store import RAW_ZONE, read_window
from recsys.core.data.lake import Lake
from recsys.core.data.schema import RAW_EVENT_SCHEMA
from recsys.core.online.bearer_keys import BearerKeys
from recsys.core.settings import Settings
from recsys.streaming.bus import BusOutcomeUnknown
from recsys.streaming.collector import BEACON_PATH, CollectorLimits, create_app
from recsys.streaming.lake_sink import SinkConfig
from recsys.streaming.runtime import build_bus, build_sink
from recsys.streaming.user_binding import UserBinding, sign_user
from tests.conftest import REPO, free_port
from tests.streaming.conftest import WRITE_KEY, keyed_access

pytestmark = pytest.mark.integration
SDK = REPO / "sdk" / "js" / "recsys.js"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]
SIGNING_KEY = "shop-backend-signing-key"

PAGE = """<!doctype html><html><head><title>{product}</title></head><body>
<h1>{product}</h1>
<a id="rec" href="/shop/p2" style="display:block;width:300px;height:60px">You may like p2</a>
<script type="module">
import * as recsys from "/recsys.js";
recsys.init({{endpoint: "{endpoint}", writeKey: "{key}", flushIntervalMs: {flush_ms},
             userBinding: {{userId: "u42", signature: "{signature}"}}}});
const ids = JSON.parse(sessionStorage.getItem("test.ids") || "[]");
ids.push(recsys.track("view", {{product_id: "{product}", price: 9.5}}));
sessionStorage.setItem("test.ids", JSON.stringify(ids));
document.getElementById("rec").addEventListener("click", () => {{
  ids.push(recsys.track("click", {{product_id: "p2", source: "recommendations",
                                  recommendation_id: "rec-1"}}));
  sessionStorage.setItem("test.ids", JSON.stringify(ids));
}});
{after}
window.pageReady = true;
</script></body></html>"""


class FlakyBus:
    """The collector's bus, except that the first publish of a view of p2 is stored and its
    answer lost (what a socket timeout after the write looks like: 503, stored unknown)."""

    def __init__(self, inner):
        self.inner, self.failed = inner, False

    def publish(self, rows):
        outcome = self.inner.publish(rows)
        if not self.failed and any(r["item_id"] == "p2" and r["event_type"] == "view"
                                   for r in rows):
            self.failed = True
            raise BusOutcomeUnknown("the bus did not answer in time")
        return outcome

    def __getattr__(self, name):
        return getattr(self.inner, name)


class Recorded:
    """ASGI middleware keeping each request's path, Sec-Fetch-Mode and body."""

    def __init__(self, app):
        self.app, self.requests = app, []

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        entry = {"path": scope["path"], "mode": headers.get(b"sec-fetch-mode", b"").decode(),
                 "body": b""}
        self.requests.append(entry)

        async def recording():
            message = await receive()
            entry["body"] += message.get("body", b"")
            return message

        return await self.app(scope, recording, send)


def shop_pages(collector_url: str, signature: str) -> type[BaseHTTPRequestHandler]:
    pages = {
        "/shop/p1": PAGE.format(product="p1", endpoint=collector_url + BEACON_PATH,
                                key=WRITE_KEY, signature=signature, flush_ms=60_000,
                                after="await recsys.flush();"),  # the view at once
        "/shop/p2": PAGE.format(product="p2", endpoint=collector_url + BEACON_PATH,
                                key=WRITE_KEY, signature=signature, flush_ms=100, after=""),
    }

    class Shop(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            path = self.path.split("?")[0]
            if path == "/recsys.js":
                body, kind = SDK.read_bytes(), "text/javascript"
            elif path in pages:
                body, kind = pages[path].encode(), "text/html; charset=utf-8"
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    return Shop


class DevTools:
    """A headless Chromium and one page of it, over the DevTools protocol."""

    def __init__(self, profile: Path):
        binary = shutil.which("chromium") or shutil.which("chromium-browser")
        assert binary, "Debian's chromium package is needed (make test installs it)"
        self.process = subprocess.Popen(
            [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
             "--remote-debugging-port=0", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().count("\n") >= 1):
            assert time.monotonic() < deadline and self.process.poll() is None, \
                "chromium did not start"
            time.sleep(0.05)
        port = port_file.read_text().split()[0]
        targets = httpx.get(f"http://127.0.0.1:{port}/json/list").json()
        page = next(t for t in targets if t["type"] == "page")
        self.socket = connect(page["webSocketDebuggerUrl"], max_size=None)
        self.calls = 0

    def call(self, method: str, **params) -> dict:
        self.calls += 1
        self.socket.send(json.dumps({"id": self.calls, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv(timeout=15))
            if message.get("id") == self.calls:
                assert "error" not in message, message
                return message.get("result", {})

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, awaitPromise=True,
                           returnByValue=True)
        assert "exceptionDetails" not in result, result
        return result["result"].get("value")

    def wait_for(self, expression: str, seconds: float = 10) -> None:
        deadline = time.monotonic() + seconds
        while True:
            try:
                if self.evaluate(expression):
                    return
            except AssertionError:  # between two pages: no context to evaluate in
                pass
            assert time.monotonic() < deadline, f"the page never had {expression}"
            time.sleep(0.05)

    def click(self, selector: str) -> None:
        box = self.evaluate(f"(() => {{ const r = document.querySelector({selector!r})"
                            f".getBoundingClientRect(); return [r.x + r.width / 2, "
                            f"r.y + r.height / 2]; }})()")
        for kind in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", type=kind, x=box[0], y=box[1],
                      button="left", clickCount=1)

    def close(self) -> None:
        try:
            self.call("Browser.close")
        except Exception:  # noqa: BLE001 (the browser may be gone already)
            pass
        self.socket.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def wait_until(condition, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def test_views_and_a_click_that_navigates_away_land_in_the_lake_once(tmp_path):
    settings = Settings(state_dir=tmp_path / "state",
                        event_stream=f"test:sdk:{uuid.uuid4().hex[:8]}")
    bus = build_bus(settings)
    shop_port, collector_port = free_port(), free_port()
    shop = f"http://127.0.0.1:{shop_port}"
    collector_url = f"http://127.0.0.1:{collector_port}"
    binding = UserBinding("require", BearerKeys([SIGNING_KEY], what="signing keys"))
    access = keyed_access(allowed_origins=(shop,), binding=binding)
    app = create_app(FlakyBus(bus), access, CollectorLimits(retry_after_seconds=1))
    recorded = Recorded(app)
    collector = uvicorn.Server(uvicorn.Config(recorded, host="127.0.0.1", port=collector_port,
                                              log_level="warning"))
    collector_thread = threading.Thread(target=collector.run, daemon=True)
    collector_thread.start()
    signature = sign_user(SIGNING_KEY, "u42", int(time.time()) + 3600)
    pages = ThreadingHTTPServer(("127.0.0.1", shop_port), shop_pages(collector_url, signature))
    threading.Thread(target=pages.serve_forever, daemon=True).start()
    counters = app.state.counters
    browser = None
    try:
        assert wait_until(lambda: collector.started)
        browser = DevTools(tmp_path / "profile")
        browser.call("Page.enable")
        browser.call("Page.navigate", url=f"{shop}/shop/p1?utm_source=newsletter&"
                                          "utm_campaign=spring&email=a%40b.example")
        browser.wait_for("window.pageReady === true")
        assert counters.accepted == 1  # the view, sent by fetch before the click
        browser.click("#rec")  # a real click: the page is left at once
        browser.wait_for("location.pathname === '/shop/p2' && window.pageReady === true")
        # the view of p2: stored, answer lost (503), sent again after Retry-After: 1 s and
        # counted as a duplicate
        assert wait_until(lambda: counters.duplicates == 1
                          and bus.client.xlen(bus.stream) == 3), counters
        assert counters.unavailable == 1
        # 31 minutes idle: the next event opens a new session (without the campaign)
        late_id = browser.evaluate("""(async () => {
            const recsys = await import("/recsys.js");
            const session = JSON.parse(sessionStorage.getItem("recsys.session"));
            session.last -= 31 * 60 * 1000;
            sessionStorage.setItem("recsys.session", JSON.stringify(session));
            const id = recsys.track("add_to_cart", {product_id: "p2", price: 9.5});
            await recsys.flush();
            return id; })()""")
        browser_ids = browser.evaluate("JSON.parse(sessionStorage.getItem('test.ids'))")
        assert bus.client.xlen(bus.stream) == 4
        assert (counters.accepted, counters.duplicates) == (3, 1)  # the lost answer's view
        assert counters.rejected == 0 and counters.unauthorized == 0
    finally:
        if browser:
            browser.close()
        pages.shutdown()
        pages.server_close()
        collector.should_exit = True
        collector_thread.join(timeout=5)
    # the click left with the page: by sendBeacon (no-cors), not by fetch (cors)
    beacons = [r for r in recorded.requests if r["mode"] == "no-cors"]
    assert len(beacons) == 1 and all(r["path"] == BEACON_PATH for r in recorded.requests)
    assert [e["event_type"] for e in json.loads(beacons[0]["body"])] == ["click"]
    assert {r["mode"] for r in recorded.requests} == {"cors", "no-cors"}
    try:
        sink = build_sink(settings, SinkConfig(block_ms=100, max_events=100))
        sink.run(idle_exit_polls=2)
        lake = read_window(Lake(settings.lake), RAW_ZONE, RAW_EVENT_SCHEMA)
    finally:
        bus.reset()
        keys = list(bus.client.scan_iter(match=f"{settings.event_stream}:*"))
        if keys:
            bus.client.delete(*keys)
    assert len(lake) == 4 and lake["event_id"].is_unique
    assert set(lake["event_id"]) == set(browser_ids) | {late_id} and len(browser_ids) == 3
    rows = {(r.event_type, r.item_id): r for r in lake.itertuples()}
    view, click, next_view = rows["view", "p1"], rows["click", "p2"], rows["view", "p2"]
    cart = rows["add_to_cart", "p2"]
    assert {r.user_id for r in rows.values()} == {"u42"}  # the signed binding
    assert view.session_id == click.session_id == next_view.session_id != cart.session_id
    assert view.page_url == click.page_url == f"{shop}/shop/p1"  # no query: no e-mail
    assert next_view.page_url == f"{shop}/shop/p2" and next_view.referrer == f"{shop}/shop/p1"
    for row in (view, click, next_view):
        assert (row.utm_source, row.utm_campaign) == ("newsletter", "spring")
    assert pd.isna(cart.utm_source) and pd.isna(cart.utm_campaign)
    assert (click.source, click.recommendation_id) == ("recommendations", "rec-1")
    assert {r.device_type for r in rows.values()} == {"desktop"}
    assert {r.time_of_day for r in rows.values()} <= {"night", "morning", "afternoon",
                                                     "evening"}
    assert all(r.day_of_week.endswith("day") for r in rows.values())
    assert view.price == 9.5
    # nothing beyond the schema's columns: no user agent, no address, no title
    assert all(pd.isna(r.extra) for r in rows.values())
