"""The project's container image: every KFP component runs in it (built from infra/)."""

PROJECT_IMAGE = "ghcr.io/recsys-mlops/recsys:0.1.0"
