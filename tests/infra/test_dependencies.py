"""The extras and the two locks (`make lock`): each part of the platform installs only what it
runs, every pin says which requirement brought it, the pins satisfy setup.cfg, and the stream
image's web stack is past the published starlette advisories that MLServer's pin holds the
serving image below."""
import configparser
import importlib.util
import re

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.conftest import REPO

spec = importlib.util.spec_from_file_location("requirements_from_setup",
                                              REPO / "infra" / "requirements_from_setup.py")
requirements_from_setup = importlib.util.module_from_spec(spec)
spec.loader.exec_module(requirements_from_setup)

SERVING_OR_TRAINING = {"mlserver", "mlflow", "mlflow-skinny", "kfp", "evidently", "scikit-learn",
                       "scikit-surprise", "rectools-lightfm", "torch", "pyspark", "scipy"}
PLATFORM_EXTRAS = ["all", "test", "spark", "neural"]
STREAM_EXTRAS = ["stream", "kafka", "avro"]


def setup_cfg() -> configparser.ConfigParser:
    config = configparser.ConfigParser()
    config.read(REPO / "setup.cfg")
    return config


def requirements(extras: list[str]) -> list[Requirement]:
    return [Requirement(line) for line in
            requirements_from_setup.requirements(setup_cfg(), extras)]


def lock(name: str) -> dict[str, tuple[Version, list[str]]]:
    """{package: (pinned version, the requirements it is there for)} of a pip-compile lock."""
    pins: dict[str, tuple[Version, list[str]]] = {}
    current = None
    for line in (REPO / name).read_text().splitlines():
        pinned = re.match(r"^([A-Za-z0-9_.\-]+)==(\S+)$", line)
        if pinned:
            current = canonicalize_name(pinned.group(1))
            pins[current] = (Version(pinned.group(2)), [])
        elif current and re.match(r"^ +# +(via )?\S", line):
            pins[current][1].append(line.split("#", 1)[1].replace("via", "", 1).strip())
    return pins


def test_every_extra_named_by_another_exists():
    extras = setup_cfg()["options.extras_require"]
    named = {name.strip() for block in extras.values()
             for nested in re.findall(r"recsys-mlops\[([a-z,\s-]+)\]", block)
             for name in nested.split(",")}
    assert named and named <= set(extras)


def test_the_stream_extras_carry_no_serving_or_training_stack():
    names = {canonicalize_name(r.name) for r in requirements(STREAM_EXTRAS)}
    assert {"fastapi", "uvicorn", "redis", "feast", "confluent-kafka", "fastavro"} <= names
    assert names & SERVING_OR_TRAINING == set()
    # ...while `all` (the project and serving images) has them
    assert SERVING_OR_TRAINING - {"torch", "pyspark", "mlflow-skinny"} <= {
        canonicalize_name(r.name) for r in requirements(["all"])}


@pytest.mark.parametrize("lock_file,extras", [("constraints.txt", PLATFORM_EXTRAS),
                                              ("constraints-stream.txt", STREAM_EXTRAS)])
def test_every_pin_says_why_it_is_there_and_fits_setup_cfg(lock_file, extras):
    pins = lock(lock_file)
    unexplained = [name for name, (_, via) in pins.items() if not via]
    assert unexplained == []
    for requirement in requirements(extras):
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{lock_file} does not pin {requirement}"
        version, via = pins[name]
        assert requirement.specifier.contains(version, prereleases=True), (requirement, version)
        assert any(source.startswith("recsys-mlops") for source in via), (name, via)


def test_the_stream_lock_holds_only_the_stream_stack_on_a_current_web_stack():
    stream, platform = lock("constraints-stream.txt"), lock("constraints.txt")
    assert set(stream) & SERVING_OR_TRAINING == set()
    # the published starlette advisories are fixed in 0.47.2 (CVE-2025-54121), 0.49.1
    # (CVE-2025-62727) and 1.0.1 (CVE-2026-48710): the stream image has them all...
    assert stream["starlette"][0] >= Version("1.0.1")
    assert stream["fastapi"][0] >= Version("0.116")
    # ...the platform (and serving) image keeps MLServer 1.7.1's fastapi<0.116 and its starlette
    assert platform["fastapi"][0] < Version("0.116")
    assert "mlserver" in " ".join(platform["fastapi"][1])


@pytest.mark.parametrize("lock_file", ["constraints.txt", "constraints-stream.txt"])
def test_a_lock_pins_versions_only_never_a_path_or_the_project(lock_file):
    """A pin like `recsys-mlops @ file:///<checkout>` (what pip-compile writes for extras that
    name each other) makes every other checkout's install unresolvable."""
    entries = [line for line in (REPO / lock_file).read_text().splitlines()
               if line and not line.startswith((" ", "#"))]
    assert entries and all(re.match(r"^[A-Za-z0-9_.\-]+==\S+$", line) for line in entries), [
        line for line in entries if "==" not in line]
    assert not any(line.startswith("recsys-mlops") for line in entries)
