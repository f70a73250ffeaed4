"""Run the training pipeline on one machine with kfp.local (the embedded default)."""
from __future__ import annotations

import logging
from pathlib import Path

from kfp import local

from recsys.pipelines.training_pipeline import training_pipeline

log = logging.getLogger(__name__)


def run_training_locally(pipeline_root: Path, caching: bool = True, **params) -> None:
    """Execute every step as a subprocess in this environment; raises if a step fails."""
    pipeline_root.mkdir(parents=True, exist_ok=True)
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(pipeline_root),
               enable_caching=caching, raise_on_error=True)
    log.info("pipeline %s: running locally under %s (caching %s)", training_pipeline.name,
             pipeline_root, "on" if caching else "off")
    training_pipeline(**params)
