"""Package mapping only; metadata and dependencies are in setup.cfg.

The repository root is the package `recsys`: every folder below keeps its place in the
repository and installs as `recsys.<folder>`, so site-packages gets one top-level name.
Tests, benchmarks, infra and docs are not part of the wheel.
"""
from setuptools import find_packages, setup

SHIPPED = ["core", "components", "pipelines", "feature_repo", "serving", "streaming",
           "monitoring", "cli"]

subpackages = find_packages(include=[f"{name}" for name in SHIPPED]
                            + [f"{name}.*" for name in SHIPPED])
setup(
    packages=["recsys", *(f"recsys.{name}" for name in subpackages)],
    package_dir={"recsys": "."},
    package_data={"recsys.feature_repo": ["*.yaml", ".feastignore"],
                  "recsys.serving": ["model_repository/*.json", "model_repository/*/*.json",
                                     "seldon_v1_requirements.txt"]},
)
