"""`recsys experiment plan|start|stop|ramp|list|export|analyze|conclude|simulate`: online
A/B tests."""
from __future__ import annotations

import argparse
import getpass
import json
from datetime import UTC, datetime
from pathlib import Path

from recsys.core.errors import ConfigError
from recsys.core.models.session_zoo import SESSION_MODELS
from recsys.experiments.definition import METRICS


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("experiment", help="online experiments: plan, start, stop, "
                                 "ramp, list, analyze, conclude, simulate")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    start = actions.add_parser("start", help="start an experiment (serving applies it within "
                               "30 s)")
    _definition_arguments(start)
    plan = actions.add_parser("plan", help="before a start: users per variant and days the "
                              "test needs, from the last days' served lists and outcomes")
    _definition_arguments(plan)
    plan.add_argument("--history-days", type=float, default=14.0,
                      help="traffic the baseline and the arrival rate come from")
    plan.add_argument("--now", default=None, help="plan as of this ISO time (default now)")
    stop = actions.add_parser("stop", help="stop a running experiment (no promotion)")
    stop.add_argument("name")
    stop.add_argument("--reason", required=True)
    ramp = actions.add_parser("ramp", help="raise a running experiment's coverage")
    ramp.add_argument("name")
    ramp.add_argument("--coverage", type=float, required=True)
    actions.add_parser("list", help="experiments with their status and verdict")
    export = actions.add_parser("export", help="an experiment with its variants' models as one "
                                "artifact for Seldon Core v2 / KServe (the champion answers "
                                "users outside it)")
    export.add_argument("name")
    export.add_argument("--out", required=True, help="a folder or s3://bucket/prefix")
    export.add_argument("--arms", action="store_true",
                        help="also one artifact per variant under OUT/arms/<label>, each "
                        "served as a Seldon Model of its own behind a Seldon Experiment with "
                        "the same weights (users of other arms are forwarded)")
    export.add_argument("--mesh-url", default="http://seldon-mesh",
                        help="with --arms: where the arms reach each other (the Seldon mesh "
                        "service, default http://seldon-mesh)")
    export.add_argument("--manifests", default=None, metavar="FILE",
                        help="with --arms: write the Seldon Models and Experiment to FILE "
                        "(YAML)")
    analyze = actions.add_parser("analyze", help="write summary.json and report.html")
    analyze.add_argument("name")
    analyze.add_argument("--out", required=True, help="output folder")
    analyze.add_argument("--now", default=None, help="analyse as of this ISO time "
                         "(default now)")
    conclude = actions.add_parser("conclude", help="stop, analyse and promote a winning "
                                  "registry version (a loss or a tie changes nothing)")
    conclude.add_argument("name")
    conclude.add_argument("--out", required=True, help="output folder")
    conclude.add_argument("--now", default=None)
    simulate = actions.add_parser(
        "simulate", help="the embedded default end to end: start NAME, serve it, play the "
        "generated shop's users through the service and the collector, conclude (after "
        "`make run`)")
    simulate.add_argument("name")
    simulate.add_argument("--variants", default="control=popularity:30,a=champion:35,"
                          "b=challenger:35", help="as for start (default the 30/35/35 "
                          "split; a challenger is trained when the registry has none)")
    simulate.add_argument("--days", type=int, default=14, help="simulated days (compressed)")
    simulate.add_argument("--requests-per-day", type=int, default=1500)
    simulate.add_argument("--minimum-users", type=int, default=1000)
    simulate.add_argument("--guardrail", action="append", default=None,
                          metavar="METRIC:MARGIN", help="as for start")
    simulate.add_argument("--events", type=int, default=200_000,
                          help="events of the generated shop `make run` used (its users)")
    simulate.add_argument("--seed", type=int, default=42, help="its seed")
    simulate.add_argument("--out", required=True, help="summary.json, report.html, "
                          "simulation.json and the processes' logs")
    simulate.add_argument("--allow-volatile-bus", action="store_true",
                          help="let the collector use a Redis without AOF (tests)")
    simulate.add_argument("--session-model", default=None, choices=SESSION_MODELS,
                          help="train the challenger as the champion's long-term model with "
                          "this next-item session model: the experiment compares session "
                          "models (default: another long-term model, unless the registry "
                          "has a challenger)")
    simulate.add_argument("--session-model-params", default=None, metavar="JSON",
                          help="with --session-model: its parameters as a JSON object")
    simulate.add_argument("--visitor-share", type=float, default=0.1,
                          help="share of requests from anonymous visitors, answered from "
                          "the live session of the views they post first (0: none)")
    parser.set_defaults(handler=cmd_experiment)


def _export(store, name: str, out: str, settings, arms: bool = False,
            mesh_url: str | None = None, manifests: str | None = None) -> dict:
    """Write experiment `name` (its definition, aliases already pinned to versions) with the
    champion and every model variant as one serving artifact; with `arms`, one artifact per
    variant too (`experiments/seldon.py`) and, to `manifests`, their Seldon objects."""
    from recsys.core.lifecycle.pyfunc import load_recommender
    from recsys.core.lifecycle.registry import aliases
    from recsys.core.lifecycle.tracking import client_for
    from recsys.serving.artifact import WrittenArtifact, write_artifact

    definition, _ = store.get(name)
    model_name = settings.registered_model_name
    champion = aliases(client_for(settings.tracking_uri), model_name).get("champion")
    if champion is None:
        raise ConfigError(f"{model_name} has no champion: it answers the users outside the "
                          "experiment")
    versions = sorted({v.version for v in definition.variants if v.version})
    models = {version: load_recommender(f"models:/{model_name}/{version}")
              for version in versions}
    champion_model = models.get(champion) or load_recommender(f"models:/{model_name}/{champion}")
    experiment = definition.model_dump_json(indent=2)
    written = write_artifact(champion_model, out, "recsys", champion, settings.s3_endpoint_url,
                             experiment=experiment, variant_models=models)
    if not arms:
        if manifests:
            raise ConfigError("--manifests describes the arm Models: export with --arms")
        return {"experiment": name, **written}
    from recsys.experiments.seldon import ARMS_FOLDER, arm_manifests, arm_model_names

    names = arm_model_names(definition)
    arm_artifacts: dict[str, WrittenArtifact] = {}
    exported: dict[str, object] = {"experiment": name, **written, "arms": arm_artifacts}
    for variant in definition.variants:
        own = {variant.version: models[variant.version]} if variant.version else {}
        arm_artifacts[variant.label] = write_artifact(
            champion_model, f"{out.rstrip('/')}/{ARMS_FOLDER}/{variant.label}",
            names[variant.label], champion, settings.s3_endpoint_url, experiment=experiment,
            variant_models=own, arm={"experiment_arm": variant.label,
                                     "experiment_arm_models": names,
                                     "experiment_mesh_url": mesh_url})
    if manifests:
        import yaml

        Path(manifests).write_text(yaml.safe_dump_all(arm_manifests(definition, out),
                                                      sort_keys=False))
        exported["manifests"] = manifests
    return exported


def _definition_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name")
    parser.add_argument("--variants", required=True,
                        help="label=target:weight,... (target: popularity, an alias such as "
                             "champion, or a version number); the first is the control")
    parser.add_argument("--control", default="", help="control label (default the first)")
    parser.add_argument("--coverage", type=float, default=1.0,
                        help="share of users in the experiment (ramp it up later)")
    parser.add_argument("--holdout", type=float, default=0.0,
                        help="share of users kept out for the experiment's life")
    parser.add_argument("--exclude-file", help="file of user ids never assigned, one per line")
    parser.add_argument("--salt", default="", help="assignment seed (default the name)")
    parser.add_argument("--primary-metric", default="ctr", choices=METRICS)
    parser.add_argument("--secondary-metric", action="append", default=None, choices=METRICS,
                        help="a metric compared besides the primary; repeatable (default "
                             "conversion, aov and revenue_per_user)")
    parser.add_argument("--minimum-users", type=int, default=1000,
                        help="users per variant before any verdict")
    parser.add_argument("--target-lift", type=float, default=0.05,
                        help="relative lift the test is sized for")
    parser.add_argument("--sequential", action="store_true",
                        help="group-sequential test: looks may be taken any day")
    parser.add_argument("--planned-users", type=int, default=None,
                        help="users per variant at which a sequential test ends")
    parser.add_argument("--attribution-hours", type=float, default=24.0)
    parser.add_argument("--guardrail", action="append", default=None, metavar="METRIC:MARGIN",
                        help="a metric that may not get worse by more than MARGIN (relative, "
                             "e.g. conversion:0.05); repeatable (default conversion:0.05)")
    parser.add_argument("--days", type=float, default=None,
                        help="end the experiment this many days after its start")


def cmd_experiment(args: argparse.Namespace) -> int:
    from recsys.core.data.lake import Lake
    from recsys.core.lifecycle.registry_lock import registry_lock
    from recsys.core.settings import load_settings
    from recsys.experiments.store import lock_name, open_store

    settings = load_settings()
    store = open_store(settings.tracking_uri, settings.registered_model_name)
    by = getpass.getuser()

    def surface_lock(surface: str = "recommend"):
        return registry_lock(settings.tracking_uri, lock_name(surface),
                             settings.registry_lock_url)

    if args.action == "start":
        definition = _definition(args)
        pinned = store.start(definition, surface_lock(definition.surface), by)
        print(pinned.model_dump_json(indent=2))
    elif args.action == "plan":
        from recsys.experiments.planning import NoHistoryError, plan_from_lake

        lake = Lake(settings.lake, settings.s3_endpoint_url)
        try:
            planned = plan_from_lake(lake, _definition(args),
                                     _moment(args.now) or datetime.now(UTC), args.history_days)
        except NoHistoryError as exc:
            raise ConfigError(str(exc)) from exc
        print(json.dumps(planned, indent=2, default=str))
    elif args.action == "stop":
        store.stop(args.name, surface_lock(), by, args.reason)
        print(json.dumps({"experiment": args.name, "status": "stopped"}))
    elif args.action == "ramp":
        ramped = store.ramp(args.name, args.coverage, surface_lock())
        print(json.dumps({"experiment": args.name, "coverage": ramped.coverage}))
    elif args.action == "simulate":
        from recsys.cli.experiment_simulation import simulate

        print(json.dumps(simulate(args, settings), indent=2))
    elif args.action == "list":
        print(json.dumps(store.list(), indent=2))
    elif args.action == "export":
        print(json.dumps(_export(store, args.name, args.out, settings, args.arms,
                                 args.mesh_url, args.manifests), indent=2))
    elif args.action in ("analyze", "conclude"):
        from recsys.experiments.evaluate import analyze_experiment, conclude

        lake = Lake(settings.lake, settings.s3_endpoint_url)
        now = _moment(args.now)
        if args.action == "analyze":
            summary, files = analyze_experiment(store, lake, args.name, args.out, now)
            print(json.dumps({"experiment": args.name, "verdict": summary["verdict"],
                              "winner": summary["winner"], **files}, indent=2))
        else:
            alias_lock = registry_lock(settings.tracking_uri, settings.registered_model_name,
                                       settings.registry_lock_url)
            print(json.dumps(conclude(store, lake, args.name, args.out, surface_lock(),
                                      alias_lock, by, now), indent=2))
    return 0


def _definition(args: argparse.Namespace):
    from datetime import timedelta

    from recsys.experiments.definition import (
        ExperimentDefinition,
        parse_guardrails,
        parse_variants,
    )

    excluded: tuple[str, ...] = ()
    if args.exclude_file:
        excluded = tuple(line.strip() for line in Path(args.exclude_file).read_text()
                         .splitlines() if line.strip())
    starts_at = datetime.now(UTC)
    extra = {"guardrails": parse_guardrails(args.guardrail)} if args.guardrail else {}
    if args.secondary_metric:
        extra["secondary_metrics"] = tuple(dict.fromkeys(args.secondary_metric))
    try:
        return ExperimentDefinition(**extra,
            name=args.name, variants=parse_variants(args.variants), control=args.control,
            coverage=args.coverage, holdout=args.holdout, excluded_users=excluded,
            salt=args.salt, primary_metric=args.primary_metric,
            minimum_users=args.minimum_users, target_lift=args.target_lift,
            sequential=args.sequential, planned_users=args.planned_users,
            attribution_hours=args.attribution_hours, starts_at=starts_at,
            ends_at=starts_at + timedelta(days=args.days) if args.days else None)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc


def _moment(text: str | None) -> datetime | None:
    if not text:
        return None
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
