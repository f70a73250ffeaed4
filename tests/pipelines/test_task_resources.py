"""The compiled pipelines hand no credential-holding address to a step as a parameter (run
records and executor files show parameters), and every step's pod has CPU and memory
requests and limits (none runs BestEffort)."""
import re

import pytest
import yaml

from recsys.pipelines import monitoring_pipeline, training_pipeline
from recsys.pipelines.task_resources import STEPS

CREDENTIAL_SETTINGS = {"redis_url", "feast_registry_url", "registry_lock_url"}
URL_WITH_PASSWORD = re.compile(r"[a-z0-9+.-]+://[^/\s:@]*:[^/\s@]+@")


def compiled(module, tmp_path) -> tuple[str, dict]:
    path = module.compile_pipeline(str(tmp_path / "pipeline.yaml"))
    text = open(path).read()
    return text, next(yaml.safe_load_all(text))


def passed_parameters(spec: dict) -> set[str]:
    """The pipeline's parameters and every parameter a task of any DAG is given."""
    found = set(spec["root"]["inputDefinitions"].get("parameters", {}))
    dags = [spec["root"]["dag"]] + [c["dag"] for c in spec["components"].values() if "dag" in c]
    for dag in dags:
        for task in dag["tasks"].values():
            found |= set(task.get("inputs", {}).get("parameters", {}))
    return found


@pytest.mark.parametrize("module", [training_pipeline, monitoring_pipeline])
def test_no_parameter_carries_a_credential_holding_address(module, tmp_path):
    """The gate and promote components keep an optional `registry_lock_url` (their Python
    bodies are called directly by tests); no pipeline sets it."""
    text, spec = compiled(module, tmp_path)
    names = passed_parameters(spec)
    assert names & CREDENTIAL_SETTINGS == set()
    assert not URL_WITH_PASSWORD.search(text)
    assert "lake_uri" in names and "tracking_uri" in names  # the check looks at parameters


def test_the_password_pattern_finds_a_url_with_a_password():
    assert URL_WITH_PASSWORD.search("postgresql+psycopg2://feast:s3cret@db:5432/feast")
    assert URL_WITH_PASSWORD.search("redis://:s3cret@redis:6379/0")
    assert not URL_WITH_PASSWORD.search("redis://127.0.0.1:6379/0")
    assert not URL_WITH_PASSWORD.search("http://recsys-mlflow.recsys.svc:5000")


@pytest.mark.parametrize("module", [training_pipeline, monitoring_pipeline])
def test_every_step_has_cpu_and_memory_requests_and_limits(module, tmp_path):
    _, spec = compiled(module, tmp_path)
    executors = spec["deploymentSpec"]["executors"]
    assert executors
    for name, executor in executors.items():
        resources = executor["container"].get("resources", {})
        for field in ("resourceCpuRequest", "resourceCpuLimit", "resourceMemoryRequest",
                      "resourceMemoryLimit"):
            assert resources.get(field), f"{name}: no {field}"
        assert resources["memoryRequest"] <= resources["memoryLimit"], name
        assert resources["cpuRequest"] <= resources["cpuLimit"], name
        step = re.sub(r"-\d+$", "", name.removeprefix("exec-"))
        assert resources["resourceMemoryLimit"] == STEPS[step].memory_limit, name
    for step, sized in STEPS.items():  # each figure names where it comes from
        assert sized.sized_from, step
