"""recsys: an MLOps platform for e-commerce product recommendations.

The repository root is the `recsys` package (setup.py maps it), so the folders a user sees
are its subpackages: `recsys.core` (the shared library), `recsys.components` (pipeline
steps), `recsys.pipelines`, `recsys.feature_repo`, `recsys.serving`, `recsys.streaming`,
`recsys.monitoring` and `recsys.cli`. See docs/architecture.md for the import rules.
"""
__version__ = "0.2.0"
