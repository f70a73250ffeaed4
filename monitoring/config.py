"""What the data-drift report compares and when it calls drift."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class DriftConfig(BaseModel):
    """Columns, tests and thresholds of the data-drift report."""

    model_config = ConfigDict(extra="forbid")

    numerical_columns: list[str] = Field(default_factory=lambda: ["price"])
    """Numeric event columns, tested with the normed Wasserstein distance."""
    categorical_columns: list[str] = Field(default_factory=lambda: [
        "event_type", "top_category", "brand", "device_type", "utm_source", "referrer"])
    """Categorical event columns, tested with the Jensen-Shannon distance."""
    num_threshold: float = Field(0.1, gt=0)
    """A numeric column drifts at or above this distance."""
    cat_threshold: float = Field(0.05, gt=0)
    """A categorical column drifts at or above this distance (a category's share doubling
    from ~10% gives ~0.09; two random halves of one period give ~0.01)."""
    per_column_threshold: dict[str, float] = Field(default_factory=dict)
    """Overrides for single columns."""
    drift_share: float = Field(0.25, gt=0, le=1)
    """Drift is declared when at least this share of the columns drifted."""
    sample_size: int | None = Field(200_000, gt=0)
    """Rows sampled from each side (None: all). Distances, unlike p-values, do not grow
    more sensitive with size, so sampling costs little: their noise at 200k rows is ~0.005."""
    seed: int = 0
    """Seed of the sampling."""
    calibrate: bool = True
    """Raise each threshold to the noise floor of a window as small as the current one
    (session-grouped reference samples; see monitoring/calibration.py)."""

    def threshold(self, column: str) -> float:
        if column in self.per_column_threshold:
            return self.per_column_threshold[column]
        return self.num_threshold if column in self.numerical_columns else self.cat_threshold
