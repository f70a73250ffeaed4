"""`recsys bench <area>`: measured figures written to benchmarks/results/<area>.json."""
from __future__ import annotations

import argparse
import json

AREAS = ("data", "pipeline", "features", "serving", "monitoring", "streaming")


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("bench", help="run a benchmark and write its JSON result",
                                 description="Benchmarks write benchmarks/results/<area>.json "
                                 "with figures, machine and date. 'all' runs every area.")
    parser.add_argument("area", choices=AREAS + ("all",))
    parser.add_argument("--events", type=int, default=1_000_000,
                        help="events to generate for data benchmarks (default 1000000)")
    parser.set_defaults(handler=cmd_bench)


def cmd_bench(args: argparse.Namespace) -> int:
    areas = AREAS if args.area == "all" else (args.area,)
    for area in areas:
        if area == "data":
            from benchmarks.data_bench import bench_data

            result = bench_data(events=args.events)
        elif area == "pipeline":
            from benchmarks.pipeline_bench import bench_pipeline

            result = bench_pipeline(events=args.events)
        elif area == "features":
            from benchmarks.features_bench import bench_features

            result = bench_features()
        elif area == "serving":
            from benchmarks.serving_bench import bench_serving

            result = bench_serving()
        elif area == "monitoring":
            from benchmarks.monitoring_bench import bench_monitoring

            result = bench_monitoring(events=args.events)
        elif area == "streaming":
            from benchmarks.streaming_bench import bench_streaming

            result = bench_streaming()
        print(json.dumps(result, indent=2, default=str))
    return 0
