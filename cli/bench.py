"""`recsys bench <area>`: measured figures written to benchmarks/results/<area>.json."""
from __future__ import annotations

import argparse
import importlib
import json

from recsys.core.errors import ConfigError

AREAS = ("data", "pipeline", "features", "serving", "monitoring", "streaming", "models",
         "experiments")


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("bench", help="run a benchmark and write its JSON result",
                                 description="Benchmarks write benchmarks/results/<area>.json "
                                 "with figures, machine and date. 'all' runs every area.")
    parser.add_argument("area", choices=AREAS + ("all",))
    parser.add_argument("--events", type=int, default=1_000_000,
                        help="events to generate for data benchmarks (default 1000000)")
    parser.add_argument("--engine", choices=("pandas", "spark"), default="pandas",
                        help="recsys bench data: the engine of the batch data path (default "
                        "pandas; spark writes data-spark.json)")
    parser.add_argument("--bus", choices=("redis", "kafka"), default="redis",
                        help="recsys bench streaming: the event bus (default redis; kafka "
                        "starts a local Tansu broker and writes streaming-kafka.json)")
    models = parser.add_argument_group("models", "recsys bench models: the model zoo on a data "
                                       "set under one protocol -> models-<name>.json")
    models.add_argument("--ratings", default=None,
                        help="ratings file/folder, or an event source for --protocol temporal "
                        "or session (default RECSYS_BENCHMARK_DATA/movielens-small)")
    models.add_argument("--format", default="movielens",
                        help="movielens for ratings; an extract format (rees46, jsonl...) or "
                        "'' (detected) for temporal")
    models.add_argument("--protocol", default=None,
                        choices=("ratings-5fold", "topn-stratified", "temporal", "session",
                                 "next-item", "leave-one-out"),
                        help="default: both ratings-5fold and topn-stratified; next-item reads "
                        "--format srgnn (a folder of SR-GNN pickles), leave-one-out --format "
                        "sequences ('user item' lines)")
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
    models.add_argument("--tune", type=int, default=None, metavar="TRIALS",
                        help="topn-stratified, next-item, leave-one-out: try up to TRIALS "
                        "parameter sets per model on a validation split of the training part "
                        "first; 0: the models' defaults. Default: 16 for next-item and "
                        "leave-one-out, 0 for topn-stratified")
    models.add_argument("--params-from", default=None, metavar="RESULT",
                        help="topn-stratified: use the parameters an earlier --tune run found "
                        "(its result file), e.g. tuned on MovieLens-small, judged on ML-100k")
    parser.set_defaults(handler=cmd_bench)


# area -> (module under recsys.benchmarks, its entry function, whether it takes --events)
RUNNERS = {
    "data": ("data_bench", "bench_data", True),
    "pipeline": ("pipeline_bench", "bench_pipeline", True),
    "features": ("features_bench", "bench_features", False),
    "serving": ("serving_bench", "bench_serving", False),
    "monitoring": ("monitoring_bench", "bench_monitoring", True),
    "streaming": ("streaming_bench", "bench_streaming", False),
    "models": ("models_bench", "bench_models", False),
    "experiments": ("experiments_bench", "bench_experiments", False),
}


def _runner(area: str):
    """The benchmark's entry function. Benchmarks live in the source checkout, not in the
    wheel, so they are looked up by name instead of imported by the shipped CLI."""
    module_name, function, _ = RUNNERS[area]
    try:
        module = importlib.import_module(f"recsys.benchmarks.{module_name}")
    except ModuleNotFoundError as exc:
        raise ConfigError("benchmarks run from a source checkout installed with "
                          "`pip install -e .` (they are not part of the wheel)") from exc
    return getattr(module, function)


def _default_ratings() -> str:
    from recsys.core.settings import Settings

    folder = Settings().benchmark_data
    if folder is None:
        raise ConfigError("recsys bench models reads --ratings, or "
                          "RECSYS_BENCHMARK_DATA/movielens-small: set one of them")
    return str(folder / "movielens-small")


def _tune(tune: int | None, protocol: str) -> int | None:
    """The fits per model a protocol's validation search gets: the session protocols
    resolve None to their own default (`session_bench.DEFAULT_TUNE`), topn-stratified
    tunes only when asked, the others never."""
    if protocol in ("next-item", "leave-one-out"):
        return tune
    return tune or 0 if protocol == "topn-stratified" else 0


def cmd_bench(args: argparse.Namespace) -> int:
    areas = AREAS if args.area == "all" else (args.area,)
    for area in areas:
        run = _runner(area)
        if area == "models":
            protocols = [args.protocol] if args.protocol else ["ratings-5fold",
                                                               "topn-stratified"]
            for protocol in protocols:
                topn = protocol == "topn-stratified"
                run(args.ratings or _default_ratings(), args.format, protocol, args.models,
                    args.name, args.holdout_days, args.reference if topn else None,
                    args.reference_params if topn else None, _tune(args.tune, protocol),
                    args.params_from if topn else None)
            continue
        if area == "data":
            result = run(events=args.events, engine=args.engine)
        elif area == "streaming":
            result = run(bus=args.bus)
        else:
            result = run(events=args.events) if RUNNERS[area][2] else run()
        print(json.dumps(result, indent=2, default=str))
    return 0
