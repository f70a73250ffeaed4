"""`recsys pipeline compile|run`: the Kubeflow training pipeline, compiled or run locally."""
from __future__ import annotations

import argparse
import json
import math
import uuid
from pathlib import Path

from pydantic import ValidationError

from recsys.components.gate.report import EXIT_CODES, RunResult, format_outcome, run_result
from recsys.components.preprocess.config import PreprocessConfig
from recsys.core.data.fingerprint import source_sha256
from recsys.core.errors import ConfigError
from recsys.core.lifecycle.gate import DEFAULT_POLICY, GatePolicy
from recsys.core.lifecycle.registry_lock import registry_lock
from recsys.core.models.session_scoring import DEFAULT_SESSION_MODEL
from recsys.core.models.session_zoo import SESSION_MODELS
from recsys.core.progress import step
from recsys.core.settings import Settings, load_settings
from recsys.pipelines.local_runner import (
    CONTAINER_STATE_DIR,
    RUNNERS,
    container_environment,
    container_problems,
    run_training_locally,
)
from recsys.pipelines.training_pipeline import compile_pipeline


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("pipeline", help="compile or locally run the training pipeline")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    comp = actions.add_parser("compile", help="write the Kubeflow IR YAML")
    comp.add_argument("--out", default="build", help="output folder (default build/)")
    comp.set_defaults(handler=cmd_compile)
    run = actions.add_parser("run", help="run the pipeline with kfp.local on the embedded "
                             "default (or the MLflow/lake URIs from RECSYS_* variables)")
    add_run_arguments(run)
    run.add_argument("--source", required=True, help="file, folder or s3:// source of events")
    run.set_defaults(handler=cmd_pipeline_run)
    schedule = actions.add_parser(
        "schedule", help="compile, then create the recurring runs (daily monitoring, daily "
        "incremental and weekly full retrain) on a Kubeflow Pipelines API through kfp.Client")
    schedule.add_argument("--host", required=True, help="KFP API endpoint, e.g. "
                          "http://ml-pipeline.kubeflow.svc:8888")
    schedule.add_argument("--experiment", default="recsys", help="KFP experiment (created "
                          "when missing; default recsys)")
    schedule.add_argument("--source", required=True, help="events source of every run")
    schedule.add_argument("--lake-uri", required=True, help="the lake (s3://...)")
    schedule.add_argument("--tracking-uri", required=True, help="the MLflow server")
    schedule.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                          help="another pipeline parameter for every run (repeatable; "
                          "never credentials: those are Kubernetes Secrets)")
    schedule.add_argument("--out", default="build", help="where the YAML is compiled")
    schedule.set_defaults(handler=cmd_schedule)


DEFAULT_MODELS = "popularity,item_knn,ease"


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--runner", choices=RUNNERS, default="subprocess",
                        help="subprocess (default: every step a process here) or container "
                        "(every step in the project image through DOCKER_HOST; needs an "
                        "s3:// source and lake, an MLflow server and Feast's production "
                        "profile; `make run-containers` starts all of them locally)")
    parser.add_argument("--engine", choices=("pandas", "spark"), default=None,
                        help="engine of the data steps: pandas (in the steps' processes) or "
                        "spark (one Spark job, local mode here); default RECSYS_ENGINE, "
                        "else pandas")
    parser.add_argument("--format", default="", help="source layout (default: detected)")
    parser.add_argument("--start", default="", help="window start (ISO or epoch ms)")
    parser.add_argument("--end", default="", help="window end, exclusive (ISO or epoch ms)")
    holdout = PreprocessConfig().holdout_days
    parser.add_argument("--holdout-days", type=float, default=holdout,
                        help=f"days at the end of the window held out (default {holdout:g})")
    parser.add_argument("--models", default=DEFAULT_MODELS,
                        help=f"comma-separated models to train (default {DEFAULT_MODELS}; "
                        f"also svd, knn_baseline, knn_with_means, lightfm_bpr, content)")
    parser.add_argument("--session-model", default=DEFAULT_SESSION_MODEL,
                        choices=[*SESSION_MODELS, "none"],
                        help="the next-item session model every trained model carries for "
                        f"live sessions (default {DEFAULT_SESSION_MODEL}; none: the session "
                        "rules answer)")
    parser.add_argument("--min-improvement", type=float,
                        default=DEFAULT_POLICY.min_relative_improvement,
                        help=f"relative {DEFAULT_POLICY.primary_metric} gain needed to promote "
                        f"(default {DEFAULT_POLICY.min_relative_improvement})")
    defaults = ", ".join(f"{metric}={drop:g}" for metric, drop in DEFAULT_POLICY.guardrails.items())
    parser.add_argument("--guardrail", action="append", default=None, metavar="METRIC=MAX_DROP",
                        help="a metric the candidate may not lose more than MAX_DROP of, "
                        "relative to the reference (0.1 = 10%%); repeatable, and the given ones "
                        f"replace the defaults ({defaults})")
    parser.add_argument("--search-trials", type=int, default=0,
                        help="hyperparameter trials per model, each an MLflow child run "
                        "(default 0: train the given parameters)")
    parser.add_argument("--search-budget", type=float, default=60.0,
                        help="seconds of search per model (default 60)")
    parser.add_argument("--require-significant", action="store_true",
                        help="promote only when the paired bootstrap 95%% interval of the "
                        f"{DEFAULT_POLICY.primary_metric} gain lies above zero")
    parser.add_argument("--no-cache", action="store_true", help="disable KFP step caching")
    parser.add_argument("--strict-exit", action="store_true",
                        help="exit 3 when this run's candidate was not promoted (refused by the "
                        "gate, or approved but the champion moved meanwhile); default: 0 for "
                        "promoted and not promoted alike, non-zero only when the run failed")


def cmd_compile(args: argparse.Namespace) -> int:
    import yaml

    from recsys.pipelines.monitoring_pipeline import compile_pipeline as compile_monitoring
    from recsys.pipelines.schedules import schedule_documents

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(compile_pipeline(str(out / "training_pipeline.yaml")))
    print(compile_monitoring(str(out / "monitoring_pipeline.yaml")))
    schedules = out / "recurring_runs.yaml"
    schedules.write_text(yaml.safe_dump(schedule_documents(), sort_keys=False))
    print(schedules)
    return 0


def cmd_schedule(args: argparse.Namespace) -> int:
    import kfp

    from recsys.pipelines.schedules import register_schedules

    cmd_compile(args)
    common = {"source": args.source, "lake_uri": args.lake_uri,
              "tracking_uri": args.tracking_uri}
    for pair in args.param:
        key, separator, value = pair.partition("=")
        if not separator or not key:
            raise ConfigError(f"--param expects KEY=VALUE, got {pair!r}")
        common[key] = value
    try:
        client = kfp.Client(host=args.host)
        experiment = client.create_experiment(args.experiment)  # returns the existing one too
    except Exception as exc:  # the API is unreachable or refuses: say where and why
        raise ConfigError(f"cannot reach the Kubeflow Pipelines API at {args.host}: "
                          f"{type(exc).__name__}: {exc}") from exc
    ids = register_schedules(client, args.out, experiment.experiment_id, common)
    print(json.dumps({"experiment": args.experiment, "recurring_runs": ids}, indent=2))
    return 0


def run_pipeline(settings: Settings, source: str, args: argparse.Namespace
                 ) -> tuple[str, RunResult]:
    """Run the pipeline locally; returns the outcome table of THIS run's candidate (found by
    the run's own label, never another overlapping run's newer version) and its result."""
    local = not source.startswith("s3://")
    run_label = uuid.uuid4().hex
    params = dict(
        source=str(Path(source).resolve()) if local else source, lake_uri=settings.lake,
        tracking_uri=settings.tracking_uri,
        source_sha256=source_sha256(Path(source)) if local else "",
        source_format=args.format, start=args.start, end=args.end,
        s3_endpoint_url=settings.s3_endpoint_url or "",
        registered_model=settings.registered_model_name, holdout_days=args.holdout_days,
        models=[m.strip() for m in args.models.split(",") if m.strip()],
        gate_policy=gate_policy(args).model_dump(), search_trials=args.search_trials,
        search_budget_seconds=args.search_budget,
        session_model="" if args.session_model == "none" else args.session_model,
        state_dir=str(settings.state_dir.resolve()), feast_profile=settings.feast_profile,
        engine=getattr(args, "engine", None) or settings.engine, run_label=run_label,
    )
    runner = getattr(args, "runner", "subprocess")
    environment = None
    if runner == "container":
        problems = container_problems(source, settings.lake, settings.tracking_uri,
                                      settings.feast_profile)
        if problems:
            raise ConfigError("cannot run the steps in containers: " + "; ".join(problems))
        params["state_dir"] = CONTAINER_STATE_DIR
        environment = container_environment()
    # refuse now, not after training, a registry whose alias moves cannot be locked
    registry_lock(settings.tracking_uri, settings.registered_model_name,
                  settings.registry_lock_url)
    with step("pipeline", source=source, tracking=settings.tracking_uri, lake=settings.lake,
              runner=runner):
        run_training_locally(settings.state_dir.resolve() / "kfp", caching=not args.no_cache,
                             runner=runner, environment=environment, **params)
    result = run_result(settings.tracking_uri, settings.registered_model_name, run_label)
    return format_outcome(result.payload, settings.tracking_uri,
                          settings.registered_model_name, result), result


def parse_guardrails(specs: list[str]) -> dict[str, float]:
    """`["coverage_at_10=0.1"]` -> {"coverage_at_10": 0.1} (METRIC=MAX_DROP, the drop
    relative to the reference's value)."""
    guardrails: dict[str, float] = {}
    for spec in specs:
        metric, separator, drop = spec.partition("=")
        metric = metric.strip()
        try:
            value = float(drop)
        except ValueError:
            value = math.nan
        if not separator or not metric or not math.isfinite(value) or value < 0:
            raise ConfigError(f"--guardrail expects METRIC=MAX_DROP with a drop >= 0 "
                              f"(0.1 = may lose 10%), got {spec!r}")
        if metric in guardrails:
            raise ConfigError(f"--guardrail {metric} given twice")
        guardrails[metric] = value
    return guardrails


def gate_policy(args: argparse.Namespace) -> GatePolicy:
    """The gate's policy from the run options (defaults: DEFAULT_POLICY)."""
    update: dict = {"min_relative_improvement": args.min_improvement,
                    "require_significant": args.require_significant}
    if args.guardrail:
        update["guardrails"] = parse_guardrails(args.guardrail)
    try:
        return GatePolicy.model_validate({**DEFAULT_POLICY.model_dump(), **update})
    except ValidationError as exc:
        raise ConfigError(f"gate policy: {exc}") from exc


def exit_status(result: RunResult, strict: bool) -> int:
    """0 when the run completed (promoted or not); with `strict`, 3 when not promoted."""
    return EXIT_CODES[result.outcome] if strict else 0


def cmd_pipeline_run(args: argparse.Namespace) -> int:
    settings = load_settings()
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    text, result = run_pipeline(settings, args.source, args)
    print(text)
    return exit_status(result, args.strict_exit)
