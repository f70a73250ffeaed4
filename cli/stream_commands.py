"""`recsys stream ...`: the real-time path (collector, processor, sink, replay)."""
from __future__ import annotations

import argparse
import json
import logging
import signal
import threading
from collections.abc import Callable

from recsys.core.online.heap_policy import batch_worker_heap

log = logging.getLogger(__name__)


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("stream", help="real-time events: collector, session-feature "
                                 "processor, lake sink, replay")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    collector = actions.add_parser("collector", help="HTTP POST /events onto the bus")
    _server_args(collector)
    collector.set_defaults(handler=cmd_collector)
    for name, helptext in (("processor", "session features from the bus into Feast"),
                           ("sink", "events from the bus into the lake (Parquet)"),
                           ("quarantine", "refused events from the dead-letter stream into "
                                          "the lake's quarantine zone")):
        worker = actions.add_parser(name, help=helptext)
        worker.add_argument("--consumer", default=f"{name}-1",
                            help="consumer name in its group (keep it across restarts)")
        worker.add_argument("--idle-exit", type=int, default=None,
                            help="stop after this many empty polls (default: run forever)")
        worker.add_argument("--metrics-port", type=int, default=None,
                            help="serve GET /health (liveness) and GET /metrics (Prometheus, "
                            "metrics token) on this port (default: none)")
        worker.add_argument("--metrics-host", default="127.0.0.1",
                            help="interface of --metrics-port (0.0.0.0 in a pod)")
        if name != "quarantine":
            worker.add_argument("--member", default="0/1", metavar="K/N",
                                help="this worker is member K of N sharing the bus's "
                                "partitions (RECSYS_BUS_PARTITIONS >= N; default 0/1: all)")
        if name == "processor":
            worker.add_argument("--batch-size", type=int, default=None,
                                help="events per poll (default 10000)")
        worker.set_defaults(handler={"processor": cmd_processor, "sink": cmd_sink,
                                     "quarantine": cmd_quarantine}[name])
    up = actions.add_parser("up", help="collector + processor + sink in one process")
    _server_args(up)
    up.set_defaults(handler=cmd_up)
    replay = actions.add_parser("replay", help="send a file's events to the collector")
    replay.add_argument("--source", required=True, help="rich-format NDJSON (.jsonl[.gz])")
    replay.add_argument("--rate", type=float, default=1000.0, help="events per second")
    replay.add_argument("--batch-size", type=int, default=100, help="events per request")
    replay.add_argument("--url", default="http://127.0.0.1:8090/events")
    replay.add_argument("--limit", type=int, default=None, help="stop after N events")
    replay.add_argument("--write-key", default=None, help="the collector's write key (default: "
                        "the first of RECSYS_COLLECTOR_WRITE_KEYS[_FILE] or the embedded one)")
    replay.set_defaults(handler=cmd_replay)
    features = actions.add_parser("features", help="a user's live session features")
    features.add_argument("user_id")
    features.set_defaults(handler=cmd_features)


def _server_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--max-event-age-days", type=float, default=7.0,
                        help="refuse events older than this (default 7; 0 takes any age, "
                        "for a replay of history)")
    parser.add_argument("--allow-volatile-bus", action="store_true",
                        help="run against a Redis that can lose acknowledged events (no AOF "
                        "fsync on every write, or evicting keys); tests and demos only")


def _settings(args: argparse.Namespace):
    from recsys.core.settings import load_settings

    settings = load_settings()
    if getattr(args, "allow_volatile_bus", False):
        settings.allow_volatile_bus = True
    return settings


def _collector_server(args: argparse.Namespace, settings, workers=None, observed=None):
    import uvicorn

    from recsys.core.online.http_limits import uvicorn_head_limits
    from recsys.streaming import lake_sink, openapi, processor
    from recsys.streaming.collector import CollectorLimits, create_app
    from recsys.streaming.metrics import StreamSources
    from recsys.streaming.runtime import build_collector_bus, collector_access

    limits = CollectorLimits(max_event_age_days=args.max_event_age_days or None)
    bus = build_collector_bus(settings)
    observed = observed or StreamSources(None, bus, (processor.GROUP, lake_sink.GROUP))
    access = collector_access(settings)
    app = create_app(bus, access, limits, workers=workers, observed=observed)
    openapi.add_route(app, access)
    print(f"collector on http://{args.host}:{args.port}/events (bus: {settings.event_bus})")
    # The client address the rate limits count is X-Forwarded-For's only from a trusted
    # proxy (the ingress); from any other peer the header is ignored.
    proxies = settings.collector_forwarded_allow_ips
    return uvicorn.Server(uvicorn.Config(app, host=args.host, port=args.port,
                                         log_level="warning", access_log=False,
                                         proxy_headers=True, forwarded_allow_ips=proxies,
                                         **uvicorn_head_limits(settings)))


def cmd_collector(args: argparse.Namespace) -> int:
    _collector_server(args, _settings(args)).run()
    return 0


def cmd_processor(args: argparse.Namespace) -> int:
    from recsys.core.settings import load_settings
    from recsys.streaming.partitions import Membership
    from recsys.streaming.processor import ProcessorConfig
    from recsys.streaming.runtime import build_processor

    config = ProcessorConfig(consumer=args.consumer, member=Membership.parse(args.member))
    if args.batch_size:
        config.batch_size = args.batch_size
    settings = load_settings()
    processor = build_processor(settings, config)
    _serve_worker_http(args, settings, "processor", processor.reader,
                       processor_stats=processor.stats)
    batch_worker_heap()
    code = _supervised(settings, "processor",
                       lambda stop: processor.run(stop=stop, idle_exit_polls=args.idle_exit))
    print(json.dumps(processor.stats.__dict__, default=str))
    return code


def cmd_sink(args: argparse.Namespace) -> int:
    from recsys.core.settings import load_settings
    from recsys.streaming.lake_sink import SinkConfig
    from recsys.streaming.partitions import Membership
    from recsys.streaming.runtime import build_sink

    settings = load_settings()
    sink = build_sink(settings, SinkConfig(consumer=args.consumer),
                      Membership.parse(args.member))
    _serve_worker_http(args, settings, "sink", sink.reader, sink_stats=sink.stats)
    batch_worker_heap()
    code = _supervised(settings, "sink",
                       lambda stop: sink.run(stop=stop, idle_exit_polls=args.idle_exit))
    print(json.dumps(sink.stats.__dict__, default=str))
    return code


def cmd_quarantine(args: argparse.Namespace) -> int:
    from recsys.core.errors import ConfigError
    from recsys.core.settings import load_settings
    from recsys.streaming.quarantine_sink import QuarantineSinkConfig
    from recsys.streaming.runtime import build_quarantine_sink

    settings = load_settings()
    sink = build_quarantine_sink(settings, QuarantineSinkConfig(consumer=args.consumer))
    if sink is None:
        raise ConfigError("the quarantine sink reads Redis Streams' dead letters; with Kafka "
                          "they are a topic of their own")
    _serve_worker_http(args, settings, "quarantine", sink.reader)
    batch_worker_heap()
    code = _supervised(settings, "quarantine",
                       lambda stop: sink.run(stop=stop, idle_exit_polls=args.idle_exit))
    print(json.dumps(sink.stats.__dict__, default=str))
    return code


def _supervised(settings, name: str, run: Callable[[Callable[[], bool]], None]) -> int:
    """Run one worker as `stream up` runs its workers (streaming/supervisor.py): passing
    failures retried as long as they last; 1 when it was stopped by repeated failures of a
    bug, 0 when it stopped on a signal or its --idle-exit."""
    from recsys.streaming.runtime import supervise

    supervisor = supervise(settings, {name: run}, stop=_stop_on_signals())
    supervisor.start()
    supervisor.wait()
    return 1 if supervisor.failed.is_set() else 0


def _stop_on_signals() -> threading.Event:
    """SIGTERM (a pod or unit stopping) and SIGINT end a worker's loop, which then writes
    its buffer and acknowledges it; the default handler would kill it mid-buffer (nothing
    lost - unacknowledged entries are read again - but written only after a restart)."""
    stopping = threading.Event()

    def handle(signum, frame) -> None:
        log.info("signal %d: stopping after the current batch", signum)
        stopping.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, handle)
    return stopping


def _serve_worker_http(args: argparse.Namespace, settings, name: str, reader,
                       processor_stats=None, sink_stats=None) -> None:
    """With --metrics-port: the worker's /health and /metrics on a thread of its own."""
    if args.metrics_port is None:
        return
    from recsys.core.online.bearer_keys import metrics_keys
    from recsys.streaming.metrics import StreamSources
    from recsys.streaming.worker_http import create_worker_app, serve_in_background

    sources = StreamSources(None, reader.bus, (reader.group,), processor_stats, sink_stats,
                            dead_letters=False)
    keys = metrics_keys(settings.metrics_token, settings.metrics_token_file, settings.state_dir)
    app = create_worker_app(name, reader, sources, keys)
    serve_in_background(app, args.metrics_host, args.metrics_port, settings)
    log.info("stream %s: /health and /metrics on http://%s:%d", name, args.metrics_host,
             args.metrics_port)


def cmd_up(args: argparse.Namespace) -> int:
    """Collector + processor + sinks in one process; the workers are supervised: passing
    failures (bus or lake down, disk full) are retried as long as they last while the
    collector keeps answering (503 while the bus is down); a worker failing again and again
    with a bug is stopped, named by `/health` (503), and the command then exits 1."""
    from recsys.streaming.metrics import StreamSources
    from recsys.streaming.runtime import build_stream_workers

    settings = _settings(args)
    stack = build_stream_workers(settings)
    processor, sink, supervisor = stack.processor, stack.sink, stack.supervisor
    observed = StreamSources(None, processor.bus, (processor.config.group, sink.config.group),
                             processor.stats, sink.stats, supervisor.status)
    server = _collector_server(args, settings, stack.health, observed)
    batch_worker_heap()
    supervisor.start()
    # uvicorn re-raises the signal that stopped it once it is done, with the handlers that
    # were there before it: the default one would end the process before the workers write
    # their buffers. This one lets the `finally` stop them.
    _stop_on_signals()
    try:
        server.run()
    finally:
        supervisor.stop()
    if supervisor.failed.is_set():
        log.error("stream up: a worker was stopped: %s", json.dumps(supervisor.status()))
        return 1
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from recsys.core.settings import load_settings
    from recsys.streaming.replay import replay
    from recsys.streaming.runtime import a_write_key

    key = args.write_key or a_write_key(load_settings())
    summary = replay(args.source, args.url, args.rate, args.batch_size, limit=args.limit,
                     write_key=key)
    print(json.dumps(summary.as_dict(), indent=2))
    return 0 if summary.refused_batches == 0 else 1


def cmd_features(args: argparse.Namespace) -> int:
    from recsys.core.settings import load_settings
    from recsys.feature_repo.features.online import online_features
    from recsys.feature_repo.features.store import open_store

    store, _ = open_store(load_settings())
    users = online_features(store, [args.user_id]).users
    print(users.iloc[0].to_json(indent=2, default_handler=str))
    return 0
