"""One exception root for the project; each subclass maps to an HTTP status."""
from __future__ import annotations

from collections.abc import Iterable


class RecsysError(Exception):
    """Root of every error this project raises on purpose."""

    status_code = 500

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class ConfigError(RecsysError):
    """A configuration value is missing or out of range."""

    status_code = 400


class SchemaError(RecsysError):
    """Data does not have the columns or types a step needs."""

    status_code = 422


class UnknownFormatError(SchemaError):
    """An input layout no reader recognises."""

    def __init__(self, source: str, columns_seen: Iterable[str], supported: Iterable[str]):
        seen = ", ".join(columns_seen) or "(none)"
        super().__init__(
            f"cannot tell the format of {source}: columns seen [{seen}]; "
            f"supported formats: {', '.join(supported)}"
        )
        self.source = source


class DataQualityError(RecsysError):
    """A batch failed its data-quality gate (too many bad rows, or empty)."""

    status_code = 422


class NotFoundError(RecsysError):
    """A requested object (user, item, model, lake path) does not exist."""

    status_code = 404


class LakeError(RecsysError):
    """The data lake could not be read or written."""

    status_code = 503


class CorruptFileError(LakeError):
    """A lake file was read whole but its content is not valid (a truncated or damaged
    Parquet file): the file's fault, not the lake's availability."""

    status_code = 500

    def __init__(self, key: str, message: str):
        super().__init__(message)
        self.key = key


class RegistryUnavailable(RecsysError):
    """The model registry could not be read or written (an outage, not an empty answer)."""

    status_code = 503


def missing_columns_error(where: str, missing: Iterable[str], seen: Iterable[str]) -> SchemaError:
    """Build the error for absent columns, naming each one and what was there instead."""
    return SchemaError(
        f"{where}: missing required column(s) {sorted(missing)}; columns seen {sorted(seen)}"
    )
