"""Analyse an experiment from the lake, write its report, and conclude it.

`evaluate` reads the exposures and events of the experiment's window and returns the
summary (`recsys.experiments.analysis`) and the daily CTR series; `write_outputs` writes
`summary.json` and `report.html`. `conclude` stops a running experiment and, only when the
verdict names a winner that is a registry version other than the champion, promotes it
through the same locked, compare-and-set registry move as the gate, with the analysis on
the version; any other verdict changes nothing in the registry.
"""
from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from recsys.core.data.lake import Lake
from recsys.core.lifecycle.registry import promote_experiment_winner
from recsys.core.lifecycle.registry_lock import RegistryLock
from recsys.experiments.analysis import WINNER, AnalysisInput, analyze
from recsys.experiments.assignment import Assigner
from recsys.experiments.definition import ExperimentDefinition
from recsys.experiments.lake_inputs import analysis_window, read_events, read_exposures
from recsys.experiments.outcomes import user_outcomes
from recsys.experiments.report import report_html
from recsys.experiments.store import RUNNING, TAG, ExperimentStore

log = logging.getLogger(__name__)
PRE_PERIOD_DAYS = 14.0


def evaluate(lake: Lake, definition: ExperimentDefinition, previous_looks: list[float],
             now: datetime | None = None) -> tuple[dict, pd.DataFrame]:
    now = now or datetime.now(UTC)
    end = min(definition.ends_at or now, now)
    start = definition.starts_at
    events_from, events_until, pre_from = analysis_window(
        start, end, definition.attribution_hours, PRE_PERIOD_DAYS)
    log.info("experiment %s: reading exposures and events from %s to %s", definition.name,
             start.isoformat(timespec="seconds"), end.isoformat(timespec="seconds"))
    exposures = read_exposures(lake, definition.name, start, end)
    events = read_events(lake, events_from, events_until)
    pre = read_events(lake, pre_from, start)
    outcomes = user_outcomes(exposures, events, pd.Timestamp(start),
                             definition.attribution_hours, pre)
    summary = analyze(AnalysisInput(definition, outcomes, Assigner(definition).expected_shares(),
                                    previous_looks))
    summary["window"] = {"start": start.isoformat(), "end": end.isoformat(),
                         "attribution_hours": definition.attribution_hours,
                         "pre_period_days": PRE_PERIOD_DAYS}
    summary["data"]["exposure_rows"] = exposures.num_rows
    summary["data"]["event_rows"] = int(len(events))
    log.info("experiment %s: %d users, %d exposures -> %s", definition.name,
             summary["data"]["users"], exposures.num_rows, summary["verdict"])
    return summary, outcomes.daily


def write_outputs(summary: dict, daily: pd.DataFrame, out_dir: str | Path) -> dict[str, str]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    (out / "report.html").write_text(report_html(summary, daily))
    return {"summary": str(out / "summary.json"), "report": str(out / "report.html")}


def analyze_experiment(store: ExperimentStore, lake: Lake, name: str, out_dir: str | Path,
                       now: datetime | None = None) -> tuple[dict, dict[str, str]]:
    """Evaluate, write the outputs, log them to the experiment's run (and record the look
    of a sequential test)."""
    definition, tags = store.get(name)
    looks = json.loads(tags.get(f"{TAG}looks", "[]"))
    summary, daily = evaluate(lake, definition, looks, now)
    if summary.get("sequential"):
        store.record_look(name, summary["sequential"]["information_fraction"])
    files = write_outputs(summary, daily, out_dir)
    store.record_analysis(name, summary, files)
    return summary, files


def conclude(store: ExperimentStore, lake: Lake, name: str, out_dir: str | Path,
             surface_lock: RegistryLock, alias_lock: RegistryLock, by: str,
             now: datetime | None = None) -> dict:
    """Stop (if running), analyse, and promote a winning registry version. `surface_lock`
    guards the experiment's status, `alias_lock` the registry's aliases."""
    definition, tags = store.get(name)
    if tags.get(f"{TAG}status") == RUNNING:
        store.stop(name, surface_lock, by, "concluded", at=now)
    summary, files = analyze_experiment(store, lake, name, out_dir, now)
    outcome = {"experiment": name, "verdict": summary["verdict"],
               "winner": summary.get("winner"), "promoted_version": None, **files}
    winner = summary.get("winner")
    champion_at_start = tags.get(f"{TAG}champion_at_start", "none")
    if summary["verdict"] != WINNER or winner is None:
        outcome["reason"] = "no winner: the registry is unchanged"
    else:
        variant = definition.variant(winner)
        if variant.version is None:
            outcome["reason"] = (f"winner {winner!r} is the {variant.target} strategy, not a "
                                 "model version: nothing to promote")
        elif variant.version == champion_at_start:
            outcome["reason"] = f"winner {winner!r} is the champion already"
        else:
            lifts = {c["metric"]: c["lift"] for c in summary["comparisons"]
                     if c["variant"] == winner and c["against"] == summary["control"]}
            evidence = {"experiment.name": name, "experiment.variant": winner,
                        "experiment.verdict": summary["verdict"],
                        "experiment.lifts": json.dumps(lifts, sort_keys=True),
                        "experiment.srm_p_value": str(summary["srm"]["p_value"])}
            promote_experiment_winner(
                store.client, store.registered_model, variant.version,
                f"won online experiment {name} ({summary['primary_metric']} lift "
                f"{lifts.get(summary['primary_metric'], 0):+.2%})",
                lock=alias_lock, compared_with=champion_at_start, evidence=evidence)
            outcome["promoted_version"] = variant.version
            outcome["reason"] = f"v{variant.version} is now champion"
    store.record_conclusion(name, summary, outcome["promoted_version"])
    log.info("experiment %s concluded: %s", name, outcome["reason"])
    return outcome
