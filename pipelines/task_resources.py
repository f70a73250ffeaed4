"""CPU and memory of each pipeline step's pod: requests (what the scheduler reserves) and
limits (past the memory limit the pod is killed), so no step runs BestEffort, the first
evicted under pressure. Sized from the benchmark figures in benchmarks/results/ (one
machine, 2 CPUs, 1 M events unless said): the memory limit is about 1.5x the step's
measured peak, the request about its peak. Raise them with the data (the 10 M figures grow
sub-linearly: data-spark.json, 4.1 GB at 1 M, 5.1 GB at 10 M)."""
from __future__ import annotations

from dataclasses import dataclass

from kfp.dsl import PipelineTask


@dataclass(frozen=True)
class StepResources:
    cpu_request: str
    cpu_limit: str
    memory_request: str
    memory_limit: str
    sized_from: str
    """The benchmark figure the numbers come from (or why there is none)."""


_SMALL = StepResources("250m", "1", "512Mi", "1Gi",
                       "no figure: reads one small artifact or hashes a stream")
_DATA = StepResources("1", "2", "3Gi", "4Gi",
                      "data.json peak_rss_mb 2442.6 (extract, validate, preprocess of 1 M events)")
STEPS: dict[str, StepResources] = {
    "fingerprint-op": _SMALL,
    "drift-trigger-op": _SMALL,
    "report-outcome-op": _SMALL,
    "extract-op": _DATA,
    "validate-op": _DATA,
    "preprocess-op": _DATA,
    "spark-data-op": StepResources(
        "2", "2", "6Gi", "8Gi",
        "data-spark.json peak_process_tree_mb 4126.3 at 1 M, 5096.0 at 10 M events (Spark in "
        "local mode inside the step; with the operator the step only submits)"),
    "features-op": StepResources(
        "1", "2", "3Gi", "4Gi",
        "pipeline.json peak_rss_mb 2320.5 (the whole pipeline at 1 M events; features-op "
        "22.9 s); features.json: materialisation 9.3 s"),
    "train-op": StepResources(
        "2", "4", "4Gi", "6Gi",
        "pipeline.json peak_rss_mb 2320.5 at 1 M events and its target 4096 (a search "
        "trains several candidates)"),
    "evaluate-op": StepResources(
        "1", "2", "3Gi", "4Gi",
        "pipeline.json peak_rss_mb 2320.5 at 1 M events (evaluate-op 20.3 s)"),
    "gate-op": StepResources("500m", "1", "1Gi", "2Gi",
                             "pipeline.json: gate-op 3.0 s; loads the candidate to check it"),
    "promote-op": StepResources("500m", "1", "1Gi", "2Gi",
                                "pipeline.json: promote-op 2.8 s; loads the version to check it"),
    "deploy-op": StepResources(
        "500m", "1", "1Gi", "2Gi",
        "no figure: loads the champion as promote-op does (pipeline.json: promote-op 2.8 s), "
        "writes it to S3 once, then only polls the Kubernetes API"),
    "lake-retention-op": StepResources(
        "250m", "1", "512Mi", "1Gi",
        "no figure: lists the lake once (a few hundred bytes per object) and deletes objects"),
    "monitor-op": StepResources(
        "1", "2", "4Gi", "5Gi",
        "monitoring.json peak_rss_mb 3248.8 (1 M reference and 1 M current events)"),
}


def sized(task: PipelineTask) -> PipelineTask:
    """`task` with its step's requests and limits (KeyError for a step not sized here)."""
    resources = STEPS[task.component_spec.name.replace("_", "-")]
    return (task.set_cpu_request(resources.cpu_request)
            .set_cpu_limit(resources.cpu_limit)
            .set_memory_request(resources.memory_request)
            .set_memory_limit(resources.memory_limit))
