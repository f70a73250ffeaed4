"""Recommended schedules as KFP recurring-run definitions (cron has six fields, seconds
first): daily drift monitoring, a daily incremental retrain, and a weekly full retrain on
Sunday 03:00 UTC. `register_schedules` creates them on a Kubeflow cluster."""
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
                 {"lookback_days": 30.0, "holdout_days": 7.0}),
    RecurringRun("recsys-weekly-full-retrain", "training_pipeline.yaml", "0 0 3 * * 0",
                 {"lookback_days": 30.0, "holdout_days": 7.0}),
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
