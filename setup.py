"""Package mapping only; metadata, dependencies and the list of shipped folders are in
setup.cfg.

The repository root is the package `recsys`: every shipped folder keeps its place in the
repository and installs as `recsys.<folder>`, so site-packages gets one top-level name.
Tests, benchmarks, infra and docs are not part of the wheel (docs/architecture.md says why
this layout; tests/test_packaging.py checks the wheel).
"""
import configparser
from pathlib import Path

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent


def shipped_folders() -> list[str]:
    """setup.cfg's `[recsys] shipped_folders`."""
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    return config["recsys"]["shipped_folders"].split()


class BuildWithoutSetupScript(build_py):
    """The root package's folder also holds this script; it is not a module of `recsys`."""

    def find_package_modules(self, package, package_dir):
        modules = super().find_package_modules(package, package_dir)
        return [m for m in modules if not (package == "recsys" and m[1] == "setup")]


SHIPPED = shipped_folders()
subpackages = find_packages(where=str(ROOT), include=SHIPPED + [f"{name}.*" for name in SHIPPED])
setup(
    packages=["recsys", *(f"recsys.{name}" for name in subpackages)],
    package_dir={"recsys": "."},
    package_data={"recsys": ["py.typed"],  # PEP 561: the package carries its types
                  "recsys.feature_repo": ["*.yaml", ".feastignore"],
                  "recsys.serving": ["model_repository/*.json", "model_repository/*/*.json",
                                     "seldon_v1_requirements.txt"]},
    cmdclass={"build_py": BuildWithoutSetupScript},
)
