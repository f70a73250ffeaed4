"""`recsys bench <area>`: measured figures written to benchmarks/results/<area>.json."""
from __future__ import annotations

import argparse
import json

AREAS = ("data", "pipeline", "features", "serving", "monitoring", "streaming", "models")
MOVIELENS_SMALL = "../shared/data/movielens-small"


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("bench", help="run a benchmark and write its JSON result",
                                 description="Benchmarks write benchmarks/results/<area>.json "
                                 "with figures, machine and date. 'all' runs every area.")
    parser.add_argument("area", choices=AREAS + ("all",))
    parser.add_argument("--events", type=int, default=1_000_000,
                        help="events to generate for data benchmarks (default 1000000)")
    models = parser.add_argument_group("models", "recsys bench models: the model zoo on a data "
                                       "set under one protocol -> models-<name>.json")
    models.add_argument("--ratings", default=MOVIELENS_SMALL,
                        help=f"ratings file/folder, or an event source for --protocol temporal "
                        f"(default {MOVIELENS_SMALL})")
    models.add_argument("--format", default="movielens",
                        help="movielens for ratings; an extract format (rees46, jsonl...) or "
                        "'' (detected) for temporal")
    models.add_argument("--protocol", default=None,
                        choices=("ratings-5fold", "topn-stratified", "temporal"),
                        help="default: both ratings-5fold and topn-stratified")
    models.add_argument("--models", default=None, help="comma-separated zoo names "
                        "(default: the rating models for ratings-5fold, all top-N otherwise)")
    models.add_argument("--name", default=None, help="result name (default <data>-<protocol>)")
    models.add_argument("--holdout-days", type=float, default=7.0,
                        help="temporal protocol: days at the end held out (default 7)")
    models.add_argument("--reference", default=None,
                        help="topn-stratified: also run published reference models on the same "
                        "split, comma-separated from bivae,bpr (Cornac, in the environment "
                        "`make reference-env` builds)")
    models.add_argument("--reference-params", type=json.loads, default=None,
                        help="JSON overrides of the reference models' published parameters, "
                        "e.g. '{\"bivae\": {\"k\": 50}}'")
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
        elif area == "models":
            from benchmarks.models_bench import bench_models

            protocols = [args.protocol] if args.protocol else ["ratings-5fold",
                                                               "topn-stratified"]
            for protocol in protocols:
                topn = protocol == "topn-stratified"
                bench_models(args.ratings, args.format, protocol, args.models, args.name,
                             args.holdout_days, args.reference if topn else None,
                             args.reference_params if topn else None)
            continue
        print(json.dumps(result, indent=2, default=str))
    return 0
