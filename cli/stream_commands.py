"""`recsys stream ...`: the real-time path (collector, processor, sink, replay)."""
from __future__ import annotations

import argparse
import json
import logging
import threading

log = logging.getLogger(__name__)


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("stream", help="real-time events: collector, session-feature "
                                 "processor, lake sink, replay")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    collector = actions.add_parser("collector", help="HTTP POST /events onto the bus")
    _server_args(collector)
    collector.set_defaults(handler=cmd_collector)
    for name, helptext in (("processor", "session features from the bus into Feast"),
                           ("sink", "events from the bus into the lake (Parquet)")):
        worker = actions.add_parser(name, help=helptext)
        worker.add_argument("--consumer", default=f"{name}-1",
                            help="consumer name in its group (keep it across restarts)")
        worker.add_argument("--idle-exit", type=int, default=None,
                            help="stop after this many empty polls (default: run forever)")
        if name == "processor":
            worker.add_argument("--batch-size", type=int, default=None,
                                help="events per poll (default 10000)")
        worker.set_defaults(handler=cmd_processor if name == "processor" else cmd_sink)
    up = actions.add_parser("up", help="collector + processor + sink in one process")
    _server_args(up)
    up.set_defaults(handler=cmd_up)
    replay = actions.add_parser("replay", help="send a file's events to the collector")
    replay.add_argument("--source", required=True, help="rich-format NDJSON (.jsonl[.gz])")
    replay.add_argument("--rate", type=float, default=1000.0, help="events per second")
    replay.add_argument("--batch-size", type=int, default=100, help="events per request")
    replay.add_argument("--url", default="http://127.0.0.1:8090/events")
    replay.add_argument("--limit", type=int, default=None, help="stop after N events")
    replay.set_defaults(handler=cmd_replay)
    features = actions.add_parser("features", help="a user's live session features")
    features.add_argument("user_id")
    features.set_defaults(handler=cmd_features)


def _server_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)


def _serve_collector(args: argparse.Namespace, settings) -> None:
    import uvicorn

    from recsys.streaming.collector import create_app
    from recsys.streaming.runtime import build_bus

    print(f"collector on http://{args.host}:{args.port}/events (bus: {settings.event_bus})")
    uvicorn.run(create_app(build_bus(settings)), host=args.host, port=args.port,
                log_level="warning", access_log=False)


def cmd_collector(args: argparse.Namespace) -> int:
    from recsys.core.settings import load_settings

    _serve_collector(args, load_settings())
    return 0


def cmd_processor(args: argparse.Namespace) -> int:
    from recsys.core.settings import load_settings
    from recsys.streaming.processor import ProcessorConfig
    from recsys.streaming.runtime import build_processor

    config = ProcessorConfig(consumer=args.consumer)
    if args.batch_size:
        config.batch_size = args.batch_size
    processor = build_processor(load_settings(), config)
    processor.run(idle_exit_polls=args.idle_exit)
    print(json.dumps(processor.stats.__dict__, default=str))
    return 0


def cmd_sink(args: argparse.Namespace) -> int:
    from recsys.core.settings import load_settings
    from recsys.streaming.lake_sink import SinkConfig
    from recsys.streaming.runtime import build_sink

    sink = build_sink(load_settings(), SinkConfig(consumer=args.consumer))
    sink.run(idle_exit_polls=args.idle_exit)
    print(json.dumps(sink.stats.__dict__, default=str))
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    from recsys.core.settings import load_settings
    from recsys.streaming.runtime import build_processor, build_sink

    settings = load_settings()
    stop = threading.Event()
    processor, sink = build_processor(settings), build_sink(settings)
    workers = [threading.Thread(target=w.run, kwargs={"stop": stop.is_set}, daemon=True,
                                name=name) for name, w in (("processor", processor),
                                                           ("sink", sink))]
    for worker in workers:
        worker.start()
    try:
        _serve_collector(args, settings)
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=10)
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from recsys.streaming.replay import replay

    summary = replay(args.source, args.url, args.rate, args.batch_size, limit=args.limit)
    print(json.dumps(summary.as_dict(), indent=2))
    return 0 if summary.refused_batches == 0 else 1


def cmd_features(args: argparse.Namespace) -> int:
    from recsys.core.settings import load_settings
    from recsys.feature_repo.online import online_features
    from recsys.feature_repo.store import open_store

    store, _ = open_store(load_settings())
    users = online_features(store, [args.user_id]).users
    print(users.iloc[0].to_json(indent=2, default_handler=str))
    return 0
