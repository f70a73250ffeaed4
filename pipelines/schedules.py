"""Recommended schedules as KFP recurring-run definitions (cron has six fields, seconds
first). `register_schedules` creates them on a Kubeflow cluster.

- daily drift monitoring, 01:00 UTC (retrains only when drift is found);
- daily incremental retrain, 02:00 UTC Monday to Saturday: the last 30 days, the default
  models with their configured parameters - cheap, it follows the newest data;
- weekly full retrain, Sunday 03:00 UTC: 90 days, the wider model set and a
  hyperparameter search (8 trials per model within 10 minutes) - the run that can change
  which kind of model is champion.

Each recurring run allows one run at a time (`max_concurrency=1`), and any two runs that
reach the gate at once are made safe by the registry: promotion is compare-and-set under
the registry lock, so the later one is refused as stale instead of overwriting.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class RecurringRun:
    name: str
    pipeline_file: str
    cron: str
    parameters: dict = field(default_factory=dict)
    max_concurrency: int = 1
    no_catchup: bool = True


SCHEDULES = (
    RecurringRun("recsys-daily-monitoring", "monitoring_pipeline.yaml", "0 0 1 * * *",
                 {"current_days": 1.0}),
    RecurringRun("recsys-daily-incremental-retrain", "training_pipeline.yaml", "0 0 2 * * 1-6",
                 {"lookback_days": 30.0, "holdout_days": 7.0, "search_trials": 0}),
    RecurringRun("recsys-weekly-full-retrain", "training_pipeline.yaml", "0 0 3 * * 0",
                 {"lookback_days": 90.0, "holdout_days": 7.0,
                  "models": ["popularity", "item_knn", "ease", "lightfm_warp", "hybrid"],
                  "search_trials": 8, "search_budget_seconds": 600.0}),
)


def schedule_documents(common: dict | None = None) -> list[dict]:
    """The definitions as plain data (written next to the compiled pipelines)."""
    return [{**asdict(s), "parameters": {**(common or {}), **s.parameters}} for s in SCHEDULES]


def register_schedules(client, build_dir: str | Path, experiment_id: str,
                       common: dict) -> list[str]:
    """Create every recurring run on a cluster through a `kfp.Client`; returns their ids."""
    ids = []
    for document in schedule_documents(common):
        run = client.create_recurring_run(
            experiment_id=experiment_id, job_name=document["name"],
            cron_expression=document["cron"],
            pipeline_package_path=str(Path(build_dir) / document["pipeline_file"]),
            params=document["parameters"], max_concurrency=document["max_concurrency"],
            no_catchup=document["no_catchup"])
        ids.append(run.recurring_run_id)
    return ids
